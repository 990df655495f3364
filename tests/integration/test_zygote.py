"""The real pipeline through the pre-imported stage worker: the same bytes as plain processes, crashes included."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project, copy_project
from tests.integration.conftest import STAGES, client, ran
from tests.integration.test_pipeline import DETERMINISTIC, file_hashes

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("pipeline")]


def _served(project: Project) -> str:
    return project.path(".mlpipeline/zygote/log").read_text()


@pytest.fixture
def with_worker(tmp_path: Path) -> Iterator[Project]:
    """A fresh copy of the repo with its stage worker running."""
    project = Project(copy_project(tmp_path / "w"))
    project.run(sys.executable, "-P", "src/mlpipeline/runtimes/zygote.py", "start")
    yield project
    project.run(sys.executable, "-P", "src/mlpipeline/runtimes/zygote.py", "stop")


def test_a_run_through_the_worker_is_byte_identical_to_a_plain_run(done: Project, tmp_path: Path) -> None:
    """`make run` starts the worker itself (WORKER=1, the default; the test suite's copies set 0)."""
    with_worker = Project(copy_project(tmp_path / "w"))
    try:
        result = with_worker.make("run", "WORKER=1")
    finally:
        with_worker.make("worker-stop", check=False)
    assert ran(result.stdout) == STAGES
    served = _served(with_worker)
    for stage in STAGES:
        assert f"zygote: {stage} in {with_worker.root}" in served, served
    assert file_hashes(with_worker, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    assert with_worker.path("dvc.lock").read_text() == done.path("dvc.lock").read_text()


def test_a_stage_killed_in_the_worker_fails_the_run_and_a_rerun_gives_the_plain_bytes(
    done: Project, with_worker: Project
) -> None:
    with_worker.repro()  # the baseline; now train is killed in the middle of a changed run
    before = yaml.safe_load(with_worker.path("dvc.lock").read_text())["stages"]
    with_worker.set_param("train.seed", 5)
    env = {**with_worker.env, "MLPIPELINE_CRASH_AT": "train.registered"}
    killed = subprocess.run(
        ["dvc", "repro"], cwd=with_worker.root, env=env, capture_output=True, text=True, timeout=600
    )
    assert killed.returncode != 0
    assert "zygote: train" in _served(with_worker)
    assert ran(killed.stdout) == ["check-params", "train"]
    locked = yaml.safe_load(with_worker.path("dvc.lock").read_text())["stages"]
    assert locked["train"] == before["train"]  # DVC recorded nothing of the killed stage, as for a plain process
    mlflow = client(with_worker)
    running = [
        run
        for run in mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
        if run.info.status == "RUNNING"
    ]
    assert len(running) == 1  # as the kill left it: its lease is free, the next stage to open a run closes it

    with_worker.make("run")  # the same change again: its train closes the killed run
    assert mlflow.get_run(running[0].info.run_id).info.status == "FAILED"
    with_worker.set_param("train.seed", 42)
    with_worker.make("run")
    assert file_hashes(with_worker, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    ours, theirs = (yaml.safe_load(p.path("dvc.lock").read_text())["stages"] for p in (with_worker, done))
    ours.pop("promote"), theirs.pop("promote")  # its verdict says what this history did: no tie was promoted
    assert ours == theirs
