"""The Airflow DAG's stage graph: generated from dvc.yaml, fresh, equal to `dvc dag`, and read by a DAG file that
imports nothing of the project."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlpipeline.errors import ConfigError
from mlpipeline.graph import load
from mlpipeline.runtimes.airflow import SPEC, spec_text, stage_graph, write_spec
from tests.conftest import REPO, VENV_BIN, copy_project

if not (REPO / "airflow" / "dags").is_dir():
    pytest.skip("Airflow was removed from this project (no airflow/dags/)", allow_module_level=True)

DAG_FILE = REPO / "airflow/dags/mlpipeline_dag.py"


def dvc_dag_edges(root: Path) -> set[tuple[str, str]]:
    dot = subprocess.run(
        [str(VENV_BIN / "dvc"), "dag", "--dot"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r'"([^"]+)" -> "([^"]+)";', dot))


def spec_edges(text: str) -> set[tuple[str, str]]:
    return {(up, stage["name"]) for stage in json.loads(text)["stages"] for up in stage["upstream"]}


def test_committed_spec_is_fresh_and_its_edges_are_dvc_dags() -> None:
    committed = (REPO / SPEC).read_text()
    assert committed == spec_text(REPO), "run `mlpipeline airflow-spec` and commit airflow/dags/pipeline.json"
    assert write_spec(REPO, check=True)
    edges = spec_edges(committed)
    assert edges == dvc_dag_edges(REPO)
    names = [stage["name"] for stage in json.loads(committed)["stages"]]
    assert names[0] == "check-params"
    assert names[-1] == "promote"
    for up, down in edges:  # a topological order: every stage after the ones it needs
        assert names.index(up) < names.index(down)


def test_a_new_stage_in_dvc_yaml_makes_the_spec_stale_until_regenerated(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "p")
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    dvc_yaml["stages"]["report"] = {
        "cmd": "cp metrics/metrics.json reports/summary.json",
        "deps": ["metrics/metrics.json"],
        "outs": ["reports/summary.json"],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    with pytest.raises(ConfigError, match=r"does not match dvc\.yaml's stage graph: run `mlpipeline airflow-spec`"):
        write_spec(root, check=True)
    assert not write_spec(root)  # written now
    assert stage_graph(root)["report"] == ["evaluate"]
    assert spec_edges((root / SPEC).read_text()) == dvc_dag_edges(root)


def test_the_dag_file_imports_nothing_of_the_project() -> None:
    tree = ast.parse(DAG_FILE.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "mlpipeline" not in imported
    assert "tests" not in imported
    assert "pipeline.json" in DAG_FILE.read_text()


def test_the_kubernetes_worker_image_holds_dvc_and_every_stage() -> None:
    """The pod of a task runs DVC and the stage in one container: its group must have both, and nothing of dev."""
    from tests.conftest import uv_path

    def names(text: str) -> set[str]:
        return {line.split("==")[0] for line in text.splitlines() if "==" in line and not line.startswith("#")}

    from mlpipeline.runtimes.images import images

    (image,) = [image for image in images(REPO, worker=True) if image.name == "worker"]
    groups = [arg for group in image.group.split() for arg in ("--group", group)]
    worker = names(
        subprocess.run(
            [uv_path(), "export", "--frozen", "--no-default-groups", *groups, "--no-emit-project"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert "dvc" in worker
    for stage in load(REPO).stages:
        assert names((REPO / f"requirements/{stage.env}.txt").read_text()) <= worker, stage
    assert not {"pytest", "ruff", "mypy"} & worker


def test_a_task_for_an_unknown_stage_says_which_exist() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "mlpipeline", "task", "trian"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no stage 'trian' in airflow/dags/pipeline.json" in done.stderr
    assert ", ".join(load(REPO).names) in done.stderr
    assert "Traceback" not in done.stderr


def test_tasks_in_one_workspace_never_interleave(tmp_path: Path) -> None:
    """Two DAG runs at once (or a run and a retry) on one workspace: the second task waits for the first."""
    from mlpipeline.runtimes.airflow import workspace_lock

    holder = subprocess.Popen(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import sys, time; from pathlib import Path; from mlpipeline.runtimes.airflow import workspace_lock\n"
            "with workspace_lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(1.5); Path(sys.argv[1], 'first-done').touch()",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with workspace_lock(tmp_path):
        assert (tmp_path / "first-done").exists()  # entered only after the first task let go
    assert holder.wait(timeout=30) == 0
