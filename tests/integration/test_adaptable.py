"""Your params.yaml is yours: any valid edit of it (a hyperparameter, the registered model's name, the data source)
never fails the tests, which run on the code's defaults (tests/conftest.py: default_params_text)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Project, copy_project, uv_path

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("adaptable")]

# The tests that read params.yaml, dvc.yaml or run the pipeline in a copy: a sample of every kind.
SUITE = [
    "tests/test_settings.py",
    "tests/test_cli.py",
    "tests/test_dvc_yaml.py",
    "tests/integration/test_pipeline.py::test_noop_and_selective_reruns",
    "tests/integration/test_lifecycle.py::test_gate_promotes_rejects_and_rolls_back",
]


def test_editing_params_never_fails_the_tests(tmp_path: Path) -> None:
    project = Project(copy_project(tmp_path / "yours", own_params=True))
    project.set_param("train.n_estimators", 37)
    project.set_param("train.registered_model", "my-model")
    project.set_param("ingest.source", "synthetic:500")
    project.set_param("ingest.name", "synthetic")
    project.set_param("validate.contract", "contracts/synthetic.yaml")
    project.set_param("promote.floors", {"accuracy": 0.5})
    project.run("mlpipeline", "check-params")
    project.run("git", "commit", "-qam", "my params")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *SUITE],
        cwd=project.root,
        env={**project.env, "UV": uv_path()},  # this run's uv: the copy has no .tools/ of its own
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
