"""Experiments are not production, and `reproduce` tells the truth about what made a model.

One story on one copy (each step costs a pipeline run): the workspace champion is v1 (random forest, depth 5,
test f1 0.933). Experiments in the workspace, in a temp copy and from a queue train and register, but only
the `challenger` alias moves; applying an experiment and `make run` promote it through the gate; so does an
explicit `mlpipeline promote --version N`; a tie never promotes. Then `reproduce` rebuilds the champion an
experiment made from its recorded params (MATCH) and refuses a model trained from uncommitted code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, Project
from tests.integration.conftest import client, copy_of

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("experiments")]

MODEL = "iris-classifier"


def aliases(project: Project) -> dict[str, str]:
    return {k: str(v) for k, v in client(project).get_registered_model(MODEL).aliases.items()}


def versions(project: Project) -> int:
    return len(client(project).search_model_versions(f"name='{MODEL}'"))


def tags(project: Project, version: str) -> dict[str, str]:
    return dict(client(project).get_model_version(MODEL, version).tags)


def test_experiments_never_move_champion_until_applied_or_promoted(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "baseline")
    assert aliases(project) == {"champion": "1"}

    # 1. A better model in a workspace experiment (depth 3: f1 0.967): registered, challenger, not champion.
    exp = project.make("exp", "ARGS=-S train.max_depth=3 --name deeper")
    assert "CHALLENGER iris-classifier v2" in exp.stderr
    assert "mlpipeline promote --version 2" in exp.stderr
    assert aliases(project) == {"champion": "1", "challenger": "2"}
    verdict = json.loads(project.path("metrics/promotion.json").read_text())
    assert (verdict["decision"], verdict["mode"], verdict["experiment"]) == ("challenger", "experiment", "deeper")
    assert tags(project, "2")["promotion"] == "challenger"
    project.run("git", "checkout", "--", ".")  # back to the baseline; the experiment stays in its ref
    project.run("dvc", "checkout", "--force")

    # 2. An even better one in a temp copy (logistic regression, C=10: f1 1.0): challenger moves, champion stays.
    project.run(
        "dvc", "exp", "run", "--temp", "-S", "train.model=logistic_regression", "-S", "train.C=10.0", "--name", "logreg"
    )
    assert aliases(project) == {"champion": "1", "challenger": "3"}

    # 3. A queued experiment that ties the champion (50 trees: f1 0.933): rejected, a tie never promotes.
    project.run("dvc", "exp", "run", "--queue", "-S", "train.n_estimators=50", "--name", "tie")
    assert versions(project) == 3  # queued, not run: nothing registered, nothing served changes
    project.run("dvc", "exp", "run", "--run-all")
    assert versions(project) == 4
    assert tags(project, "4")["promotion"] == "rejected"
    assert "a tie does not promote" in tags(project, "4")["promotion.reason"]
    assert aliases(project) == {"champion": "1", "challenger": "3"}
    assert project.run("git", "status", "--porcelain").stdout == ""  # the workspace never saw them

    # 4. Applying an experiment and running the pipeline in the workspace promotes it, through the gate.
    project.run("dvc", "exp", "apply", "deeper")
    applied = project.make("run")
    assert "gating v2 again as the workspace's own" in applied.stderr
    assert "PROMOTED iris-classifier v2" in applied.stderr
    assert aliases(project)["champion"] == "2"
    verdict = json.loads(project.path("metrics/promotion.json").read_text())
    assert (verdict["decision"], verdict["mode"]) == ("promoted", "workspace")
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    # 5. The explicit act: the same gate, the champion re-scored on the candidate's own test set.
    explicit = project.run("mlpipeline", "promote", "--version", "3")
    assert "PROMOTED iris-classifier v3" in explicit.stderr
    assert aliases(project) == {"champion": "3", "previous-champion": "2"}
    assert tags(project, "3")["promotion.mode"] == "explicit"
    # Only the alias holder carries the champion tag.
    holders = [
        v.version for v in client(project).search_model_versions(f"name='{MODEL}'") if v.tags.get("champion") == "true"
    ]
    assert [str(v) for v in holders] == ["3"]
    # The tie stays rejected when promoted explicitly.
    again = project.run("mlpipeline", "promote", "--version", "4")
    assert "REJECTED iris-classifier v4" in again.stderr
    assert aliases(project)["champion"] == "3"

    # 6. reproduce rebuilds v3 from its commit *and* the params its run recorded (not the commit's 100 trees).
    reproduced = project.run("mlpipeline", "reproduce", "champion")
    assert "MATCH: rebuilt from its commit and recorded params" in reproduced.stdout
    assert "params differ from commit" in reproduced.stdout
    assert "train.C" in reproduced.stdout
    assert "train.model" in reproduced.stdout
    assert versions(project) == 4  # the reproduction registered nothing here

    # 7. A model trained from uncommitted code cannot be rebuilt from any commit: UNREPRODUCIBLE, named.
    module = project.path("src/mlpipeline/core/models.py")
    module.write_text(module.read_text() + "\n# an uncommitted edit\n")
    project.set_param("train.max_depth", 4)  # a new model (the same bytes would be v2 again: nothing registered)
    project.make("run")
    latest = str(versions(project))
    dirty = project.run("mlpipeline", "reproduce", latest, check=False)
    assert dirty.returncode == 6, dirty.stdout + dirty.stderr
    assert "UNREPRODUCIBLE" in dirty.stdout
    assert "src/mlpipeline/core/models.py" in dirty.stdout
    assert "MATCH" not in dirty.stdout.replace("MISMATCH", "")


def test_make_sweep_runs_one_queued_experiment_per_value_through_the_worker(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "baseline")
    before = versions(project)
    try:
        swept = project.make("sweep", "SWEEP=60,70", "JOBS=1", "WORKER=1")
    finally:
        project.make("worker-stop", check=False)
    assert "Experiment" in swept.stdout  # the comparison table
    shown = json.loads(project.run("dvc", "exp", "show", "--json").stdout)
    experiments = [e for commit in shown for e in (commit.get("experiments") or [])]
    swept_values = sorted(
        run["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["n_estimators"] for run in experiments
    )
    assert swept_values == [60, 70]
    assert versions(project) == before + 2  # each trained and registered a version
    assert aliases(project)["champion"] == "1"  # and none became champion
    assert "zygote: train" in project.path(".mlpipeline/zygote/log").read_text()  # stages ran in the worker
    bad = project.make("sweep", "SWEEP=-5", check=False)
    assert bad.returncode != 0
    assert "train.n_estimators" in bad.stderr + bad.stdout  # refused before anything is queued


def test_a_queue_runs_from_the_environment_without_it_on_path(done: Project, tmp_path: Path) -> None:
    """DVC starts its queue's workers as a bare `dvc` from PATH; `.venv/bin/mlpipeline exp` puts its own
    environment first, so a queue runs with the venv not activated (a bare `.venv/bin/dvc queue start` would
    leave the task queued with no worker)."""
    project = copy_of(done, tmp_path / "p")
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "baseline")
    before = versions(project)
    env = {**project.env, "PATH": "/usr/bin:/bin"}
    for args in (["--queue", "-S", "train.n_estimators=30", "--name", "bare"], ["--run-all"]):
        ran = subprocess.run(
            [str(VENV_BIN / "mlpipeline"), "exp", *args], cwd=project.root, env=env, capture_output=True, text=True
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
    assert versions(project) == before + 1
    status = project.run("dvc", "queue", "status").stdout
    assert "bare" in status, status
    assert "Success" in status, status
