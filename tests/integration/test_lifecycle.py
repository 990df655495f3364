"""Model lifecycle on the real pipeline and MLflow store: gate, aliases, rollback, lineage, reproduce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.integration.conftest import GRAPH, client, copy_of, ran, rerun

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("lifecycle")]

MODEL = "iris-classifier"


def aliases(project: Project) -> dict[str, str]:
    model = client(project).get_registered_model(MODEL)
    return {alias: str(version) for alias, version in model.aliases.items()}


def verdict(project: Project) -> dict:
    return json.loads(project.path("metrics/promotion.json").read_text())


def test_gate_promotes_rejects_and_rolls_back(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    # First run: version 1 became champion.
    assert aliases(project) == {"champion": "1"}
    assert verdict(project)["decision"] == "promoted"

    # Deliberately weak: one shallow tree. Rejected, champion unchanged, the verdict explains.
    project.set_param("train.n_estimators", 1)
    project.set_param("train.max_depth", 1)
    result = project.repro()
    assert ran(result.stdout)[-1] == "promote"
    assert "REJECTED iris-classifier v2" in result.stderr
    assert aliases(project) == {"champion": "1"}
    weak = verdict(project)
    assert weak["decision"] == "rejected"
    failed = {c["name"] for c in weak["checks"] if c["status"] == "fail"}
    assert "min_accuracy" in failed
    assert "vs_champion" in failed  # re-scored champion on this test set beats it
    tags = client(project).get_model_version(MODEL, "2").tags
    assert tags["promotion"] == "rejected"
    assert "min_accuracy" in tags["promotion.reason"]

    # Better (depth 3 scores f1 0.967 against the champion's 0.933 on this test set): promoted; the old champion
    # keeps previous-champion.
    project.set_param("train.n_estimators", 100)
    project.set_param("train.max_depth", 3)
    project.repro()
    assert verdict(project)["decision"] == "promoted"
    assert aliases(project) == {"champion": "3", "previous-champion": "1"}

    # Rollback restores it, with the reason recorded on both versions.
    rolled = project.run("mlpipeline", "rollback", "--reason", "v3 misbehaves in prod")
    assert "champion is v1 again" in rolled.stderr
    assert aliases(project) == {"champion": "1"}
    assert client(project).get_model_version(MODEL, "3").tags["rollback.reason"] == "v3 misbehaves in prod"
    again = project.run("mlpipeline", "rollback", "--reason", "again", check=False)
    assert again.returncode == 1
    assert "no previous-champion alias" in again.stderr

    # Retiring a champion that turned out wrong leaves no champion; the next run promotes another through the
    # gate, never the retired one (here the workspace's model is v3 again: it comes back refused).
    retired = project.run("mlpipeline", "retire", "--reason", "v1 learned from a row id")
    assert "retired iris-classifier v1" in retired.stderr
    assert aliases(project) == {}
    assert client(project).get_model_version(MODEL, "1").tags["retired.reason"] == "v1 learned from a row id"
    assert project.run("mlpipeline", "retire", "--reason", "x", check=False).returncode == 1  # none to retire
    project.repro("-f", "promote")
    assert aliases(project) == {"champion": "3"}
    project.run("mlpipeline", "retire", "--reason", "v3 too")
    refused = project.repro("-f", "promote")
    assert "REJECTED iris-classifier v3" in refused.stderr
    refusal = next(c for c in verdict(project)["checks"] if c["name"] == "not_retired")
    assert refusal["status"] == "fail"
    assert "v3 was retired (v3 too)" in refusal["detail"]
    assert aliases(project) == {}


def test_a_gate_of_your_own_is_params_only_and_says_when_the_champion_fails_it(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    assert aliases(project) == {"champion": "1"}  # test accuracy 0.933, precision_macro 0.933
    # A stricter gate on a metric of your choice, in params.yaml alone: promote reruns and says the champion
    # no longer passes it (it stays: nothing demotes a model by itself), with what to do.
    project.set_param("promote.floors", {"accuracy": 0.9, "precision_macro": 0.95})
    result = project.repro()
    assert ran(result.stdout) == rerun("promote", params=True)
    assert "iris-classifier v1 is the champion but no longer passes the gate: min_precision_macro" in result.stderr
    assert "mlpipeline rollback" in result.stderr
    assert aliases(project) == {"champion": "1"}
    checks = {c["name"]: c["status"] for c in verdict(project)["checks"]}
    assert checks["min_precision_macro"] == "fail"
    assert verdict(project)["decision"] == "already-champion"
    # A better candidate that passes the new gate replaces it.
    project.set_param("train.max_depth", 3)  # f1_macro 0.967 on this test set
    project.repro()
    assert verdict(project)["decision"] == "promoted", verdict(project)


def test_gate_fails_closed_when_the_champion_cannot_be_loaded(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    # Break the stored model files of the only model so far, the champion.
    broken = list(project.path("mlruns").rglob("model.skops"))
    assert broken
    for skops_file in broken:
        skops_file.write_bytes(b"not a model")
    project.set_param("train.seed", 11)
    result = project.repro(check=False)
    assert result.returncode != 0
    assert (
        "promotion gate could not decide for iris-classifier v2, nothing promoted (champion still 1)" in result.stderr
    )
    assert "cannot load champion v1" in result.stderr
    assert "Traceback" not in result.stderr
    assert aliases(project) == {"champion": "1"}
    assert verdict(project)["decision"] == "error"


def test_lineage_matches_dvc_lock_and_git_and_reproduce_matches(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    shown = project.run("mlpipeline", "lineage", "champion", "--json")
    info = json.loads(shown.stdout)
    tags = info["tags"]
    lock = yaml.safe_load(project.path("dvc.lock").read_text())["stages"]
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    assert tags["git.commit"] == head
    assert tags["git.dirty"] == "false"
    assert tags["data.raw.md5"] == lock["ingest"]["outs"][0]["md5"]
    # The split train read and the one evaluate scored, wherever dvc.yaml says they come from.
    outs = {o["path"]: o["md5"] for stage in lock.values() for o in stage.get("outs", [])}
    train, evaluate = GRAPH.stage("train"), GRAPH.stage("evaluate")
    read = {key: next(d for d in stage.data_deps if stage.dep_key(d, GRAPH) == key) for key, stage in
            (("train", train), ("test", evaluate))}  # fmt: skip
    assert tags["data.train.md5"] == outs[read["train"]]
    assert tags["data.test.md5"] == outs[read["test"]]
    assert tags["lineage.consistent"] == "true"
    assert tags["mlpipeline.runtime"] == "local"
    assert info["aliases"] == ["champion"]
    readable = project.run("mlpipeline", "lineage").stdout
    assert f"git commit     {head}" in readable

    # Move the workspace on (new params, outputs gone) so reproduce cannot just look at them.
    project.set_param("preprocess.seed", 1)
    shutil.rmtree(project.path("data"))
    result = project.run("mlpipeline", "reproduce", "champion")
    assert "MATCH: rebuilt from its commit and recorded params" in result.stdout
    assert "DIFFERS" not in result.stdout
    assert aliases(project) == {"champion": "1"}  # the reproduction registered nothing here
    assert len(client(project).search_model_versions(f"name='{MODEL}'")) == 1
    assert project.run("git", "worktree", "list").stdout.count("\n") == 1
