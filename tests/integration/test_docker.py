"""Docker runtime against a real engine: the runner container drives sibling stage containers.

Needs a reachable Docker engine and the images of the current tag (`make build`); skipped with the reason
otherwise, unless MLPIPELINE_REQUIRE_DOCKER=1 (set by .ci/run), which turns a skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlpipeline.runtimes.docker import image_name, image_tag, stage_images
from tests.conftest import REPO, Project, copy_project
from tests.integration.conftest import STAGES, client, docker_missing, ran, require_docker
from tests.integration.test_pipeline import DETERMINISTIC, file_hashes

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.xdist_group("docker")]

USER = 1000  # a non-root user, to prove outputs belong to the caller


def _docker_ready() -> str | None:
    return docker_missing([*stage_images(REPO), image_name("runner", REPO)])


@pytest.fixture(scope="module", autouse=True)
def _engine() -> None:
    require_docker([*stage_images(REPO), image_name("runner", REPO)])


@pytest.fixture
def shared_project() -> Iterator[Project]:
    """A copy of the repo in a directory a non-root user can reach, owned by that user."""
    base = Path(tempfile.mkdtemp(prefix="mlpipeline-docker-"))
    base.chmod(0o755)
    project = Project(copy_project(base / "project"))
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(base)], check=True)
    yield project
    shutil.rmtree(base, ignore_errors=True)


def as_user(project: Project, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the project as the non-root user, with access to the Docker socket only."""
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    env = {**project.env, "HOME": str(project.root), "USER": "tester"}
    done = subprocess.run(
        ["setpriv", f"--reuid={USER}", f"--regid={USER}", f"--groups={socket_gid}", *cmd],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def test_run_docker_matches_local_and_outputs_belong_to_the_user(shared_project: Project, done: Project) -> None:
    result = as_user(shared_project, "make", "run-docker")
    assert ran(result.stdout) == STAGES
    assert file_hashes(shared_project, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    outputs = [p for d in ("data", "metrics", "models", "plots", "reports") for p in shared_project.path(d).rglob("*")]
    outputs += [shared_project.path("dvc.lock"), shared_project.path("mlflow.db")]
    assert outputs
    assert {
        (p.relative_to(shared_project.root).as_posix(), p.stat().st_uid) for p in outputs if p.stat().st_uid != USER
    } == set()
    tags = client(shared_project).get_model_version("iris-classifier", "1").tags
    assert tags["mlpipeline.runtime"] == "docker"
    # A second docker run has nothing to do, and neither has a local one: dvc.lock does not depend on the runtime.
    assert ran(as_user(shared_project, "make", "run-docker").stdout) == []
    assert shared_project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    assert not any(
        str(shared_project.root) in line for line in shared_project.path("dvc.lock").read_text().splitlines()
    )


def test_experiment_in_a_temp_copy_runs_in_containers(project: Project) -> None:
    env = {**project.env, "MLPIPELINE_RUNTIME": "docker"}
    project.env = env
    project.repro()
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "baseline")
    project.run("dvc", "exp", "run", "--temp", "-S", "train.n_estimators=20", "--name", "small")
    shown = project.run("dvc", "exp", "show", "--json").stdout
    assert '"small"' in shown
    # The temp copy logged to the project's own MLflow store (DVC_ROOT), not to one deleted with the copy.
    versions = client(project).search_model_versions("name='iris-classifier'")
    assert len(versions) == 2
    assert not list(project.path(".dvc/tmp/exps").glob("**/mlflow.db"))


def test_stage_failing_in_its_container_is_not_recorded(project: Project) -> None:
    project.env = {**project.env, "MLPIPELINE_RUNTIME": "docker"}
    project.repro()
    lock_before = yaml.safe_load(project.path("dvc.lock").read_text())["stages"]["validate"]
    rows = [line.split(",") for line in project.path("data/raw/iris.csv").read_text().splitlines()]
    target = rows[0].index("target")
    rows = [row[:target] + row[target + 1 :] for row in rows]  # features and the label's name
    rows[0][-1] = "species"
    rows[5][1] = "oops"
    project.path("data/sources/bad.csv").write_text("\n".join(",".join(row) for row in rows) + "\n")
    project.set_param("ingest.source", "data/sources/bad.csv")
    project.set_param("ingest.target", "species")
    failed = project.repro(check=False)
    assert failed.returncode != 0
    assert "breaks data contract 'iris'" in failed.stderr  # the stage's own message, from inside its container
    assert "Traceback" not in failed.stderr
    assert yaml.safe_load(project.path("dvc.lock").read_text())["stages"]["validate"] == lock_before
    assert "validate" in project.run("dvc", "status").stdout


def test_missing_or_stale_image_says_make_build(project: Project) -> None:
    dockerfile = project.path("docker/Dockerfile")
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    stale = image_tag(project.root)
    result = subprocess.run(
        ["mlpipeline", "ingest"],
        cwd=project.root,
        env={**project.env, "MLPIPELINE_RUNTIME": "docker"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"image mlpipeline-ingest:{stale} not found" in result.stderr
    assert "Run `make build`" in result.stderr
    runner = subprocess.run(["make", "run-docker"], cwd=project.root, env=project.env, capture_output=True, text=True)
    assert runner.returncode != 0
    assert f"image mlpipeline-runner:{stale} not found" in runner.stdout + runner.stderr


def test_serving_image_serves_the_champion(project: Project) -> None:
    import json
    import socket
    import time
    import urllib.request

    project.repro()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = str(project.root)
    name = f"mlpipeline-serve-test-{port}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:8000",
            "--user",
            f"{os.getuid()}:{os.getgid()}",
            "-v",
            f"{root}:{root}",
            "-w",
            root,
            "-e",
            f"PYTHONPATH={root}/src",
            "-e",
            "HOME=/tmp",
            f"mlpipeline-serve:{image_tag(REPO)}",
            "python",
            "-m",
            "mlpipeline",
            "serve",
            "--host",
            "0.0.0.0",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                    assert json.load(response)["status"] == "ready"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
                    raise AssertionError(f"serving container not ready:\n{logs}") from None
                time.sleep(0.5)
        row = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"rows": [row]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.load(response)
        assert answer["version"] == "1"
        assert answer["predictions"][0]["label"] == "setosa"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
