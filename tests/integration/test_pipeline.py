"""The real pipeline: `dvc repro` in a copy of the repo, the local MLflow store, the files it leaves."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Project, copy_project, default_params_text
from tests.integration.conftest import GRAPH, client, copy_of, importers, model_run, ran, rerun, version_of

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("pipeline")]


def outputs(*stages: str) -> list[str]:
    """The outputs of ``stages`` (every stage by default) as dvc.yaml lists them, but the promotion verdict: it
    says what one run did to the registry."""
    return [o.path for s in GRAPH.stages if not stages or s.name in stages for o in s.outs if o.key != "promotion"]


# Every output, models included, is byte-identical between runs with the same inputs.
DETERMINISTIC = outputs()
OUTPUTS = [*DETERMINISTIC, str(GRAPH.output("promotion"))]


def file_hashes(project: Project, files: list[str]) -> dict[str, str]:
    """The md5 of each file, and of each file inside each folder, of ``files``."""
    from mlpipeline.io.files import md5

    found = {}
    for rel in files:
        path = project.path(rel)
        inside = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found.update({p.relative_to(project.root).as_posix(): md5(p) for p in inside})
    return found


def test_full_run_produces_every_output(done: Project) -> None:
    for rel in OUTPUTS:
        assert done.path(rel).exists(), rel
    metrics = json.loads(done.path("metrics/metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9
    report = json.loads(done.path("metrics/report.json").read_text())
    per_class = report["per_class"]
    assert set(per_class) == {"setosa", "versicolor", "virginica"}
    assert sum(row["support"] for row in per_class.values()) == 30
    assert metrics["n_test_rows"] == 30
    assert len(done.path("data/processed/train.csv").read_text().splitlines()) == 121
    assert len(done.path("data/raw/iris.csv").read_text().splitlines()) == 151
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == 30
    assert done.path("plots/evaluation/confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_mlflow_run_holds_train_and_evaluate(done: Project) -> None:
    meta = json.loads(done.path("models/model_metadata.json").read_text())
    assert "run_id" not in meta  # per-run facts live in MLflow, never in a cached output
    mlflow = client(done)
    run = model_run(done)
    assert run.data.params["model"] == "random_forest"
    assert run.data.params["n_estimators"] == "100"
    assert {"train_accuracy", "test_accuracy", "test_f1_macro", "test_f1_weighted"} <= set(run.data.metrics)
    assert run.data.metrics["test_accuracy"] == json.loads(done.path("metrics/metrics.json").read_text())["accuracy"]
    artifacts = {a.path for a in mlflow.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert run.data.tags["data.train.md5"] in done.path("dvc.lock").read_text()
    assert run.info.status == "FINISHED"
    version = mlflow.get_model_version("iris-classifier", version_of(done, run.info.run_id))
    assert version.tags["mlpipeline.evaluated"] == "true"
    assert version.tags["mlpipeline.model_md5"] == meta["model_md5"]


def test_local_model_copy_predicts_like_the_registered_one(done: Project) -> None:
    import pandas as pd

    from mlpipeline.io.modeldir import load

    model = load(done.path("models/model"))
    test = pd.read_csv(done.path("data/processed/test.csv"))
    predicted = model.predict(test.drop(columns=["target", "target_name"]))
    rows = pd.read_csv(done.path("plots/predictions.csv"))
    names = dict(test[["target", "target_name"]].drop_duplicates().itertuples(index=False))
    assert [names[p] for p in predicted] == rows["predicted"].tolist()


def test_noop_and_selective_reruns(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    assert ran(project.repro().stdout) == []
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    project.set_param("train.n_estimators", 50)
    assert ran(project.repro().stdout) == rerun("train", params=True)
    versions = client(project).search_model_versions("name='iris-classifier'")
    assert len(versions) == 2

    project.set_param("preprocess.test_size", 0.3)
    assert ran(project.repro().stdout) == rerun("preprocess", params=True)
    assert len(project.path("data/processed/test.csv").read_text().splitlines()) == 46

    registered = len(client(project).search_model_versions("name='iris-classifier'"))
    module = project.path("src/mlpipeline/stages/train.py")
    module.write_text(module.read_text() + "\n# edited\n")
    # train reruns; the model comes out byte-identical, so evaluate and promote (which never import train.py) don't,
    # and train registers nothing: the model is the version already registered (and gated), not a new one that
    # nothing would ever evaluate or gate.
    again = project.repro()
    assert ran(again.stdout) == ["train"]
    assert "came out byte-identical to iris-classifier v3" in again.stderr
    # Trained from uncommitted code: said where it bites, at `make run`, not months later at reproduce.
    assert "uncommitted changes to src/mlpipeline/stages/train.py: the version trained now cannot be rebuilt" in (
        again.stderr
    )
    # The same for a param the model does not use (C is the linear models'): train reruns, nothing is registered.
    project.set_param("train.C", 5.0)
    assert ran(project.repro().stdout) == ["check-params", "train"]
    assert len(client(project).search_model_versions("name='iris-classifier'")) == registered

    module = project.path("src/mlpipeline/stages/validate.py")
    module.write_text(module.read_text() + "\n# edited\n")
    # validate reruns; its report is byte-identical, so DVC rightly skips what depends only on it.
    assert ran(project.repro().stdout) == ["validate"]

    # A module imported indirectly: every stage from validate on reads typed columns through core/schema.py.
    module = project.path("src/mlpipeline/core/schema.py")
    module.write_text(module.read_text() + "\n# edited\n")
    assert ran(project.repro().stdout) == importers("src/mlpipeline/core/schema.py")

    # One imported by preprocess alone: its split comes out byte-identical, so nothing after it reruns.
    module = project.path("src/mlpipeline/core/split.py")
    module.write_text(module.read_text() + "\n# edited\n")
    assert ran(project.repro().stdout) == ["preprocess"]

    # A dev tool's version is not an input: only a stage's own resolved packages are.
    project.path("uv.lock").write_text(project.path("uv.lock").read_text() + "\n# a dev tool moved\n")
    assert ran(project.repro().stdout) == []
    requirements = project.path("requirements/evaluate.txt")
    requirements.write_text(requirements.read_text() + "# matplotlib bumped\n")
    assert ran(project.repro().stdout) == ["evaluate"]


def test_outputs_are_stored_once_linked_into_the_cache_and_the_cache_stays_intact(
    done: Project, tmp_path: Path
) -> None:
    """.dvc/config links the cache (reflink, else hardlink): a large output is not stored twice. Safe because a
    stage replaces its outputs with new files, never writes into them: every cache file keeps its hash."""
    from mlpipeline.io.files import md5

    project = copy_of(done, tmp_path / "p")
    cache = project.path(".dvc/cache/files/md5")

    def intact() -> None:
        for cached in cache.rglob("*"):
            if cached.is_file() and not cached.name.endswith(".dir"):
                assert md5(cached) == cached.parent.name + cached.name, cached

    reflinks = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout
    for test_size in (0.3, 0.2):  # a new split, then the old one restored from DVC's run-cache
        project.set_param("preprocess.test_size", test_size)
        project.repro()
        for rel in (GRAPH.stage("preprocess").out(key).path for key in ("train", "test")):
            path = project.path(rel)
            digest = md5(path)
            linked = os.path.samefile(path, cache / digest[:2] / digest[2:])
            assert linked or reflinks.strip() in ("xfs", "btrfs"), f"{rel} is a copy of its cache file"
        intact()
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_two_clones_run_from_scratch_are_byte_identical_and_match_the_committed_lock(
    done: Project, tmp_path: Path
) -> None:
    again = Project(copy_project(tmp_path / "again"))
    again.make("run")
    assert file_hashes(again, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    assert again.path("dvc.lock").read_text() == done.path("dvc.lock").read_text()
    # A fresh clone's `make run` changes nothing git tracks: the committed dvc.lock is what it produces. (The tests
    # run on the default params: when yours differ, your dvc.lock is for yours, and this does not apply.)
    if (REPO / "params.yaml").read_text(encoding="utf-8") == default_params_text():
        for project in (done, again):
            assert project.run("git", "status", "--porcelain").stdout == "", project.root


def test_dvc_experiment(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "baseline")
    project.run("dvc", "exp", "run", "-S", "train.n_estimators=50", "--name", "fifty")
    shown = json.loads(project.run("dvc", "exp", "show", "--json").stdout)
    experiments = [e for rev in shown for e in (rev.get("experiments") or [])]
    names = [e.get("name") for e in experiments]
    assert "fifty" in names
    params = json.dumps(experiments[names.index("fifty")])
    assert '"n_estimators": 50' in params


def test_bad_data_and_bad_params_lose_nothing(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "good run")
    before = file_hashes(project, DETERMINISTIC)
    versions = len(client(project).search_model_versions("name='iris-classifier'"))

    raw = project.path("data/raw/iris.csv").read_text().splitlines()
    raw[5] = raw[5].replace(raw[5].split(",")[1], "oops", 1)
    project.path("data/sources/incoming.csv").write_text("\n".join(raw) + "\n")
    project.set_param("ingest.source", "data/sources/incoming.csv")
    failed = project.make("run", "WORKER=0", check=False)
    assert failed.returncode == 2  # GNU make's code for any failure; its last line names the stage's
    assert "sepal_width_cm: wrong type (not a number) (1 row, e.g. line 6: 'oops')" in failed.stderr
    assert "stage 'validate' failed with exit code 3 (data: " in failed.stderr
    assert failed.stderr.rstrip().splitlines()[-1].endswith("Error 3")
    assert "Traceback" not in failed.stderr
    assert project.run("mlpipeline", "run", check=False).returncode == 3  # the documented code, without make
    # Nothing downstream ran: the model, metrics and registry are as they were (ingest wrote the new raw data and
    # validate its report, which says what is wrong).
    downstream = outputs(*GRAPH.downstream("validate")[1:])
    kept = {k: v for k, v in before.items() if any(k == d or k.startswith(f"{d}/") for d in downstream)}
    assert file_hashes(project, downstream) == kept
    assert len(client(project).search_model_versions("name='iris-classifier'")) == versions

    project.run("git", "checkout", "--", "params.yaml", "dvc.lock")
    project.path("data/sources/incoming.csv").unlink()
    project.set_param("train.max_dept", 3)
    failed = project.run("mlpipeline", "run", check=False)
    assert failed.returncode == 2
    assert "unknown key 'train.max_dept'" in failed.stderr
    assert len(client(project).search_model_versions("name='iris-classifier'")) == versions

    # The last good outputs are restorable from the DVC cache.
    project.run("git", "checkout", "--", "params.yaml", "dvc.lock")
    project.run("dvc", "checkout", "--force")
    assert file_hashes(project, DETERMINISTIC) == before
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
