"""Fixtures for the integration tier: a project run once from nothing, and isolated copies of it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from mlpipeline.graph import load
from tests.conftest import REPO, Project, copy_project
from tests.integration.services import database, s3, tracking_server  # noqa: F401  (fixtures for every module)

# The stages of dvc.yaml, in its order: what a full `dvc repro` runs. Expectations about reruns derive from its
# graph, so a project with a stage of its own passes the same tests.
GRAPH = load(REPO)
STAGES = GRAPH.names


def rerun(*changed: str, params: bool = False) -> list[str]:
    """What `dvc repro` runs after the inputs of the ``changed`` stages changed: they and every stage after them
    (a params change reruns check-params first)."""
    return (["check-params"] if params else []) + GRAPH.downstream(*changed)


def importers(module: str) -> list[str]:
    """The stages whose code deps list ``module`` (a path under src/), in order."""
    return [stage.name for stage in GRAPH.stages if module in stage.deps]


def ran(output: str) -> list[str]:
    """Stages `dvc repro` ran, in order."""
    import re

    return re.findall(r"Running stage '([a-z_-]+)'", output)


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project, run once from nothing with `make run`; tests that change it work on their own copy."""
    project = Project(copy_project(tmp_path_factory.mktemp("done")))
    result = project.make("run")
    assert ran(result.stdout) == STAGES, result.stdout
    return project


def copy_of(done: Project, dest: Path) -> Project:
    """A copy of a run project, DVC cache and MLflow store included (cheaper than running again).

    MLflow's SQLite store records absolute artifact locations; they are rewritten to the copy so that the copy
    neither reads nor writes the original's artifacts.
    """
    shutil.copytree(done.root, dest, symlinks=True)
    old, new = str(done.root), str(dest)
    with sqlite3.connect(dest / "mlflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in db.execute(f"PRAGMA table_info('{table}')").fetchall():
                if column[2].upper().startswith(("VARCHAR", "TEXT")):
                    db.execute(f'UPDATE \'{table}\' SET "{column[1]}" = replace("{column[1]}", ?, ?)', (old, new))
    return Project(dest)


def client(project: Project):  # type: ignore[no-untyped-def]
    """An MlflowClient on the project's local store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project.path('mlflow.db')}")


def model_run(project: Project):  # type: ignore[no-untyped-def]
    """The MLflow run that logged the model in the project's models/ (found by the model's md5, as evaluate does)."""
    meta = json.loads(project.path("models/model_metadata.json").read_text())
    runs = client(project).search_runs(
        [client(project).get_experiment_by_name(meta["experiment"]).experiment_id],
        filter_string=f"tags.`mlpipeline.model_md5` = '{meta['model_md5']}'",
        order_by=["attributes.start_time DESC"],
    )
    assert runs, meta
    return runs[0]


def version_of(project: Project, run_id: str) -> str:
    (version,) = client(project).search_model_versions(f"run_id='{run_id}'")
    return str(version.version)


def docker_missing(images: list[str]) -> str | None:
    """Why the Docker tests cannot run (no engine, or one of ``images`` not built), or None when they can."""
    try:
        import docker

        engine = docker.from_env(timeout=5)
        engine.ping()
    except Exception as exc:
        return f"no Docker engine reachable ({exc.__class__.__name__}); run .ci/provision-docker.sh"
    for name in images:
        try:
            engine.images.get(name)
        except Exception:
            return f"image {name} not built; run make build"
    return None


def require_docker(images: list[str]) -> None:
    """Skip the calling tests when Docker or one of ``images`` is missing; fail instead in CI
    (MLPIPELINE_REQUIRE_DOCKER=1), where the docker tier must run."""
    import os

    reason = docker_missing(images)
    if reason and os.environ.get("MLPIPELINE_REQUIRE_DOCKER") == "1":
        pytest.fail(f"MLPIPELINE_REQUIRE_DOCKER=1 but {reason}")
    if reason:
        pytest.skip(reason)
