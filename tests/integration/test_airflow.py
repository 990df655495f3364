"""The pipeline on Airflow, with real Airflow (its own environment, airflow/.venv from `make airflow-setup`).

- `mlpipeline task` on two workspaces that share only an S3 server (moto) and an MLflow store: the protocol every
  Airflow task follows, without Airflow;
- the DAG file in a real DagBag, for each operator; the Kubernetes pod spec rendered (no cluster can run here);
- `airflow dags test`: the whole pipeline, byte-identical to `make run`; a failing stage stops what is downstream,
  keeps the champion, and a run after the fix resumes from the failed stage;
- a real scheduler, DAG processor, API server and two Celery workers (Redis broker, PostgreSQL metadata DB), each
  with its own clone, sharing only the S3 server and an MLflow tracking server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, VENV_BIN, Project, copy_project, project_env
from tests.integration.conftest import GRAPH, STAGES, ran
from tests.integration.services import KEY_ID, PG, SECRET, Service, clean_env, compose_config, free_port, stop_group
from tests.integration.test_pipeline import DETERMINISTIC, file_hashes

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow")]

if not (REPO / "airflow" / "dags").is_dir():
    pytest.skip("Airflow was removed from this project (no airflow/dags/)", allow_module_level=True)

AIRFLOW_BIN = REPO / "airflow" / ".venv" / "bin"


@pytest.fixture(scope="module", autouse=True)
def airflow_installed() -> None:
    if not (AIRFLOW_BIN / "airflow").exists():
        reason = "Airflow's environment is not installed: run `make airflow-setup` (make test does)"
        if os.environ.get("MLPIPELINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"MLPIPELINE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


def commit_all(project: Project, message: str) -> str:
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", message)
    return project.run("git", "rev-parse", "HEAD").stdout.strip()


def clone(origin: Path, dest: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True, env=project_env(dest))
    return Project(dest)


# ---- the task protocol, without Airflow ----


def task(workspace: Project, stage: str, commit: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "mlpipeline", "task", stage, "--commit", commit],
        cwd=workspace.root,
        env={**workspace.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"task {stage} failed:\n{done.stdout}\n{done.stderr}"
    assert SECRET not in done.stdout + done.stderr
    return done


def test_tasks_on_two_workspaces_sharing_only_s3_and_mlflow(done: Project, s3: Service, tmp_path: Path) -> None:
    origin = Project(copy_project(tmp_path / "origin"))
    # The commit's dvc.lock must be the one of its params (the tests' defaults, which `done` ran): a project whose
    # own params differ (docs/adapt.md changes the gate) would otherwise rerun its persisted stages at this commit.
    shutil.copyfile(done.path("dvc.lock"), origin.path("dvc.lock"))
    origin.run("git", "add", "dvc.lock")
    origin.run("git", "commit", "-qm", "dvc.lock of the default params", "--allow-empty")
    head = origin.run("git", "rev-parse", "HEAD").stdout.strip()
    workers = [clone(origin.root, tmp_path / "worker-a"), clone(origin.root, tmp_path / "worker-b")]
    env = {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "MLPIPELINE_S3_ENDPOINT": s3.url,
        "MLPIPELINE_REMOTE_URL": f"s3://dvc-store/{uuid.uuid4().hex[:8]}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",  # stands in for the tracking server
    }
    stages_ran: dict[str, list[str]] = {}
    for i, stage in enumerate(STAGES):  # alternate workers: every stage needs outputs made on the other one
        stages_ran[stage] = ran(task(workers[i % 2], stage, head, env).stdout)
    assert [s for s, names in stages_ran.items() if stage_ran(s, names)] == STAGES  # each ran once, where due
    last = workers[(len(STAGES) - 1) % 2]
    assert last.path("dvc.lock").read_bytes() == done.path("dvc.lock").read_bytes()  # as `make run` writes it
    assert file_hashes(last, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    assert "storage" in last.path(".dvc/config").read_text()
    assert SECRET not in last.path(".dvc/config").read_text()

    # A fresh worker, the same commit: everything is restored from the remote, nothing runs again.
    fresh = clone(origin.root, tmp_path / "worker-c")
    again = task(fresh, "promote", head, env)
    assert ran(again.stdout) == []
    assert fresh.path("dvc.lock").read_bytes() == done.path("dvc.lock").read_bytes()

    # A new commit changes a train param: a worker still at the old commit checks it out; only train onward run.
    origin.set_param("train.n_estimators", 60)
    changed = commit_all(origin, "n_estimators 60")
    assert ran(task(workers[0], "train", changed, env).stdout) == ["check-params", "train"]
    assert ran(task(workers[1], "evaluate", changed, env).stdout) == ["check-params", "evaluate"]
    assert workers[1].run("git", "rev-parse", "HEAD").stdout.strip() == changed


def stage_ran(stage: str, names: list[str]) -> bool:
    return stage in names and all(name in ("check-params", stage) for name in names)


# ---- Airflow itself ----


def airflow_env(home: Path, workspace: Path, **extra: str) -> dict[str, str]:
    """A worker's environment: Airflow's own settings, the workspace, the project's Python for the stages."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "airflow" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        MLPIPELINE_WORKSPACE=str(workspace),
        MLPIPELINE_PYTHON=str(VENV_BIN / "python"),
        MLFLOW_TRACKING_URI=f"sqlite:///{workspace / 'mlflow.db'}",
        PATH=f"{AIRFLOW_BIN}{os.pathsep}{os.environ['PATH']}",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    env.update(extra)
    return env


def airflow(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


STATES = """
import json
from airflow.models.dagrun import DagRun
run = max(DagRun.find(dag_id="mlpipeline"), key=lambda r: r.run_after)
tis = run.get_task_instances()
print("STATES=" + json.dumps({"run": str(run.state), **{ti.task_id: str(ti.state) for ti in tis}}))
"""


def in_airflow(script: str, marker: str, env: dict[str, str]) -> Any:
    """Run ``script`` with Airflow's Python (the DAG folder as its argument); the JSON it prints after ``marker``."""
    done = subprocess.run(
        [str(AIRFLOW_BIN / "python"), "-c", script, str(REPO / "airflow" / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith(marker))
    return json.loads(line.removeprefix(marker))


def last_run_states(env: dict[str, str]) -> dict[str, str]:
    return dict(in_airflow(STATES, "STATES=", env))


DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("mlpipeline")
edges = sorted([up, t.task_id] for t in dag.tasks for up in t.upstream_task_ids) if dag else None
print("DAGBAG=" + json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "edges": edges,
    "operators": sorted({type(t).__name__ for t in dag.tasks}) if dag else None,
    "queues": {t.task_id: t.queue for t in dag.tasks} if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
}))
"""


def dagbag(env: dict[str, str]) -> dict[str, Any]:
    return dict(in_airflow(DAGBAG, "DAGBAG=", env))


def test_dag_imports_for_every_operator_with_dvc_yamls_edges(tmp_path: Path) -> None:
    spec = json.loads((REPO / "airflow/dags/pipeline.json").read_text())
    expected = sorted([up, stage["name"]] for stage in spec["stages"] for up in stage["upstream"])
    for operator, cls in [
        ("local", "PythonOperator"),
        ("docker", "StageRunner"),
        ("kubernetes", "KubernetesPodOperator"),
    ]:
        env = airflow_env(tmp_path / "home", REPO, MLPIPELINE_AIRFLOW_OPERATOR=operator)
        bag = dagbag(env)
        assert bag["errors"] == {}, (operator, bag["errors"])
        assert bag["edges"] == expected, operator
        assert bag["operators"] == [cls]
        assert bag["max_active_runs"] == 1  # two runs never overlap on a workspace
    queued = dagbag(airflow_env(tmp_path / "home", REPO, MLPIPELINE_AIRFLOW_QUEUES="train=big, evaluate=big"))
    assert queued["queues"]["train"] == queued["queues"]["evaluate"] == "big"
    assert queued["queues"]["ingest"] != "big"
    for bad, message in [("OPERATOR", "use one of local, docker, kubernetes"), ("QUEUES", "does not have")]:
        env = airflow_env(tmp_path / "home", REPO)
        env[f"MLPIPELINE_AIRFLOW_{bad}"] = "nope" if bad == "OPERATOR" else "trian=big"
        errors = dagbag(env)["errors"]
        assert len(errors) == 1, errors
        assert message in next(iter(errors.values())), errors


RENDER = """
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
from kubernetes.client import ApiClient
dag = DagBag(dag_folder=sys.argv[1]).dags["mlpipeline"]
op = dag.get_task("train")
pod = op.build_pod_request_obj(dry_run=True)
print("POD=" + json.dumps(ApiClient().sanitize_for_serialization(pod)))
"""


def test_kubernetes_pod_spec_renders_with_secrets_by_reference(tmp_path: Path) -> None:
    env = airflow_env(
        tmp_path / "home",
        REPO,
        MLPIPELINE_AIRFLOW_OPERATOR="kubernetes",
        MLPIPELINE_GIT_URL="https://git.example.invalid/team/project.git",
        MLPIPELINE_IMAGE_TAG="abc123",
    )
    pod = in_airflow(RENDER, "POD=", env)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "mlpipeline-worker:abc123"
    assert "mlpipeline task train" in container["args"][0]
    assert {"secretRef": {"name": "mlpipeline-credentials"}} in container["envFrom"]
    names = {e["name"] for e in container["env"]}
    assert not any(name.startswith(("AWS_", "MLFLOW_TRACKING_PASSWORD")) for name in names)  # only by reference
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def dags_test(env: dict[str, str], commit: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    airflow(env, "db", "migrate")
    done = airflow(env, "dags", "test", "mlpipeline", "--conf", json.dumps({"commit": commit}), check=False)
    return done, last_run_states(env)


def champion(workspace: Path) -> str | None:
    from mlflow.tracking import MlflowClient

    aliases = (
        MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}")
        .get_registered_model("iris-classifier")
        .aliases
    )
    return str(aliases["champion"]) if "champion" in aliases else None


def test_dags_test_runs_the_pipeline_like_make_run_and_a_failure_stops_downstream(
    done: Project, tmp_path: Path
) -> None:
    workspace = Project(copy_project(tmp_path / "workspace"))
    head = workspace.run("git", "rev-parse", "HEAD").stdout.strip()
    env = airflow_env(tmp_path / "home", workspace.root)
    result, states = dags_test(env, head)
    assert states == {"run": "success", **dict.fromkeys(STAGES, "success")}, result.stdout[-3000:]
    assert workspace.path("dvc.lock").read_bytes() == done.path("dvc.lock").read_bytes()
    assert file_hashes(workspace, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
    assert champion(workspace.root) == "1"

    # A commit that breaks validate: it fails with its own one-line error; nothing downstream runs.
    workspace.set_param("validate.min_rows_per_class", 60)
    broken = commit_all(workspace, "too strict")
    result, states = dags_test(env, broken)
    assert states["run"] == "failed"
    assert states["validate"] == "failed"
    assert {states[s] for s in GRAPH.downstream("validate")[1:]} == {"upstream_failed"}
    assert "ERROR" in result.stdout + result.stderr
    assert "min_rows_per_class" in result.stdout + result.stderr  # the stage's own one-line error
    assert champion(workspace.root) == "1"

    # Fixed: the next run resumes from the failed stage (ingest is not run again) and promotes nothing new.
    workspace.set_param("validate.min_rows_per_class", 10)
    workspace.set_param("train.n_estimators", 60)
    fixed = commit_all(workspace, "fixed, and a train change")
    result, states = dags_test(env, fixed)
    assert states == {"run": "success", **dict.fromkeys(STAGES, "success")}
    assert "Stage 'ingest' didn't change, skipping" in result.stdout + result.stderr


@pytest.mark.docker
def test_dags_test_with_the_docker_operator_matches_make_run(done: Project) -> None:
    from tests.integration.test_docker import USER, _docker_ready

    reason = _docker_ready()
    if reason:
        if os.environ.get("MLPIPELINE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"MLPIPELINE_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="mlpipeline-airflow-docker-"))
    base.chmod(0o755)
    try:
        workspace = Project(copy_project(base / "workspace"))
        head = workspace.run("git", "rev-parse", "HEAD").stdout.strip()
        # The runner and the stage containers run as the workspace's owner, a non-root user.
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(workspace.root)], check=True)
        env = airflow_env(
            base / "home", workspace.root, MLPIPELINE_AIRFLOW_OPERATOR="docker", MLPIPELINE_IMAGE_TAG=image_tag()
        )
        result, states = dags_test(env, head)
        assert states == {"run": "success", **dict.fromkeys(STAGES, "success")}, result.stdout[-3000:]
        assert workspace.path("dvc.lock").read_bytes() == done.path("dvc.lock").read_bytes()
        assert file_hashes(workspace, DETERMINISTIC) == file_hashes(done, DETERMINISTIC)
        owners = {p.stat().st_uid for p in workspace.path("data").rglob("*") if p.is_file()}
        assert owners == {USER}
        assert champion(workspace.root) == "1"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def image_tag() -> str:
    from mlpipeline.runtimes.docker import image_tag as tag

    return tag(REPO)


# ---- two machines simulated: a scheduler and two Celery workers, each with its own clone ----


class Process:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        stop_group(self.proc, timeout=30)
        self.handle.close()


@pytest.fixture
def redis_url() -> str:
    import socket

    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            reason = "Redis not reachable on 127.0.0.1:6379 (the Celery broker)"
            if os.environ.get("MLPIPELINE_REQUIRE_SERVICES") == "1":
                pytest.fail(f"MLPIPELINE_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)
    return f"redis://127.0.0.1:6379/{7 + os.getpid() % 8}"


@pytest.fixture
def airflow_db() -> Iterator[str]:
    import psycopg2

    name = f"airflow_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield f"{PG}/{name}"
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def run_ids(base: Path) -> list[str]:
    """The DAG runs whose task logs the workers under ``base`` wrote (each worker keeps its own logs)."""
    return sorted({p.name.removeprefix("run_id=") for p in base.rglob("run_id=*") if p.is_dir()})


def task_logs_of(base: Path, run_id: str) -> list[str]:
    return [p.read_text() for p in base.rglob(f"run_id={run_id}/**/*.log") if p.is_file()]


def test_celery_workers_on_separate_clones_share_only_s3_and_mlflow(
    done: Project, s3: Service, tracking_server: Service, redis_url: str, airflow_db: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    origin = Project(copy_project(tmp_path / "origin"))
    head = origin.run("git", "rev-parse", "HEAD").stdout.strip()
    api_port = free_port()
    common = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        # Services and secrets as Airflow connections (the workers' environment has none of them).
        "AIRFLOW_CONN_MLPIPELINE_MLFLOW": json.dumps({"conn_type": "http", "host": tracking_server.url}),
        "AIRFLOW_CONN_MLPIPELINE_S3": json.dumps(
            {
                "conn_type": "aws",
                "login": KEY_ID,
                "password": SECRET,
                "extra": {"endpoint_url": s3.url, "remote_url": f"s3://dvc-store/{uuid.uuid4().hex[:8]}"},
            }
        ),
        "MLPIPELINE_AIRFLOW_QUEUES": "train=big,evaluate=big",
    }
    home = tmp_path / "airflow-home"
    scheduler_env = airflow_env(home, origin.root, **common)
    scheduler_env.pop("MLFLOW_TRACKING_URI")
    airflow(scheduler_env, "db", "migrate")
    processes: list[Process] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        for name, args in [
            ("api-server", ["api-server", "--port", str(api_port), "--host", "127.0.0.1"]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
        ]:
            processes.append(Process(name, [str(AIRFLOW_BIN / "airflow"), *args], scheduler_env, logs / f"{name}.log"))
        workers = {}
        for name, queues in [("worker-a", "default"), ("worker-b", "big")]:
            workspace = clone(origin.root, tmp_path / name)
            env = airflow_env(tmp_path / f"{name}-home", workspace.root, **common)
            env.pop("MLFLOW_TRACKING_URI")  # from the connection only
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())  # two workers, one machine
            cmd = [str(AIRFLOW_BIN / "airflow"), "celery", "worker", "--queues", queues, "--celery-hostname", name]
            processes.append(Process(name, cmd, env, logs / f"{name}.log"))
            workers[name] = workspace

        def trigger_and_wait(commit: str) -> dict[str, str]:
            """`make airflow-run`'s script: trigger, then print each task's state until the run ends."""
            done = subprocess.run(
                [
                    str(AIRFLOW_BIN / "python"),
                    str(REPO / "airflow" / "run_dag.py"),
                    "--commit",
                    commit,
                    "--timeout",
                    "600",
                ],
                env=scheduler_env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            for process in processes:
                assert process.proc.poll() is None, f"{process.name} exited:\n{process.log.read_text()[-3000:]}"
            assert done.returncode == 0, done.stdout + done.stderr
            assert "promote        success" in done.stdout
            return last_run_states(scheduler_env)

        states = trigger_and_wait(head)
        first_runs = run_ids(home.parent)
        assert len(first_runs) == 1
        assert len(task_logs_of(home.parent, first_runs[0])) == len(STAGES)
        worker_logs = "\n".join((logs / f"{name}.log").read_text() for name in workers)
        assert states == {"run": "success", **dict.fromkeys(STAGES, "success")}, worker_logs[-5000:]
        # Tasks landed on both workers, each in its own clone.
        for workspace in workers.values():
            assert workspace.path(".mlpipeline/airflow-task.lock").exists()
        final = workers["worker-a"]  # promote runs on the default queue
        assert final.path("dvc.lock").read_bytes() == done.path("dvc.lock").read_bytes()
        results = [str(GRAPH.output("metrics")), str(GRAPH.output("model_metadata"))]
        assert file_hashes(final, results) == file_hashes(done, results)
        client = MlflowClient(tracking_uri=tracking_server.url)
        assert client.get_model_version_by_alias("iris-classifier", "champion").version == "1"
        assert not final.path("mlflow.db").exists()  # everything went to the shared server
        assert SECRET not in worker_logs
        task_logs = "\n".join(p.read_text() for p in home.parent.rglob("logs/**/*.log") if p.is_file())
        assert SECRET not in task_logs

        # A second run of the same commit: every stage is skipped (or restored), no new model version.
        states = trigger_and_wait(head)
        assert states["run"] == "success"
        assert len(client.search_model_versions("name='iris-classifier'")) == 1
        second = next(p for p in run_ids(home.parent) if p not in first_runs)
        second_logs = task_logs_of(home.parent, second)
        assert len(second_logs) == len(STAGES)
        assert all("Running stage" not in log for log in second_logs), second_logs
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(tmp_path / "origin" / ".dvc" / "cache", ignore_errors=True)


# ---- the compose profile and the Airflow image ----


def test_compose_airflow_profile_definition(tmp_path: Path) -> None:
    services = compose_config(tmp_path, "airflow")["services"]
    airflow_services = {"redis", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"}
    assert airflow_services | {"airflow-worker"} <= set(services)
    for name in airflow_services | {"airflow-worker"}:
        service = services[name]
        assert service.get("profiles") == ["airflow"], name  # `make up` stays light
        if name == "redis":
            continue
        assert service["image"].startswith("mlpipeline-airflow:")
        assert not str(service["user"]).startswith(("0:", "root")), name
        environment = service["environment"]
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == f"{tmp_path}/airflow/dags"
        assert environment["MLPIPELINE_AIRFLOW_OPERATOR"] == "docker"
        assert environment["USER"]  # Airflow refuses to run as a uid without a user name
        assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
        assert json.loads(environment["AIRFLOW_CONN_MLPIPELINE_S3"])["extra"]["endpoint_url"] == "http://minio:9000"
    (port,) = services["airflow-apiserver"]["ports"]
    assert (port if isinstance(port, str) else f"{port['host_ip']}:").startswith("127.0.0.1:")  # Compose v1 or v2
    assert "/var/run/docker.sock" in str(services["airflow-worker"]["volumes"])
    assert "change-me" not in (REPO / "compose.yaml").read_text()


@pytest.mark.docker
def test_airflow_image_parses_the_dag_as_non_root() -> None:
    import docker

    image = f"mlpipeline-airflow:{airflow_image_tag()}"
    try:
        engine = docker.from_env(timeout=10)
        engine.images.get(image)
    except Exception as exc:
        reason = f"{image} not available ({type(exc).__name__}): run make build"
        if os.environ.get("MLPIPELINE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"MLPIPELINE_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    dags = str(REPO / "airflow" / "dags")
    output = engine.containers.run(
        image,
        ["python", "-c", DAGBAG, dags],
        environment={
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__CORE__DAGS_FOLDER": dags,
            "MLPIPELINE_AIRFLOW_OPERATOR": "docker",
        },
        volumes={dags: {"bind": dags, "mode": "ro"}},
        network_mode="none",
        remove=True,
    ).decode()
    line = next(line for line in output.splitlines() if line.startswith("DAGBAG="))
    bag = json.loads(line.removeprefix("DAGBAG="))
    assert bag["errors"] == {}
    assert len(bag["edges"]) == len(dvc_edges())
    assert engine.images.get(image).attrs["Config"]["User"] not in ("", "0", "root")


def dvc_edges() -> list[list[str]]:
    spec = json.loads((REPO / "airflow/dags/pipeline.json").read_text())
    return sorted([up, stage["name"]] for stage in spec["stages"] for up in stage["upstream"])


@pytest.mark.docker
@pytest.mark.server
def test_compose_airflow_init_creates_and_migrates_the_metadata_database(tmp_path: Path) -> None:
    """The profile's airflow-init, exactly as compose.yaml has it, in the Airflow image against this machine's
    PostgreSQL standing in for the stack's (`postgres` resolves to it): creates the `airflow` database once,
    migrates it, and is idempotent."""
    import psycopg2
    import yaml

    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed")
    env = {**clean_env(), "PROJECT_DIR": str(tmp_path), "POSTGRES_PASSWORD": "unused-with-trust-auth"}
    shutil.copy(REPO / "compose.yaml", tmp_path / "compose.yaml")
    config = subprocess.run(
        [compose, "--profile", "airflow", "config"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    init = yaml.safe_load(config.stdout)["services"]["airflow-init"]
    tag = airflow_image_tag()
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    admin.autocommit = True
    cursor = admin.cursor()
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")
    made_role = cursor.fetchone() is None
    if made_role:
        cursor.execute("CREATE ROLE mlflow LOGIN CREATEDB")
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow'")
    made_db = cursor.fetchone() is None
    if made_db:
        cursor.execute("CREATE DATABASE mlflow OWNER mlflow")
    cursor.execute("DROP DATABASE IF EXISTS airflow WITH (FORCE)")
    try:
        cmd = ["docker", "run", "--rm", "--network", "host", "--add-host", "postgres:127.0.0.1", "--user", "1000:1000"]
        for key, value in init["environment"].items():
            cmd += ["-e", f"{key}={value}"]
        for attempt in (1, 2):  # a second `make airflow-up` finds the database there
            done = subprocess.run(
                [*cmd, f"mlpipeline-airflow:{tag}", *init["command"]], capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (attempt, done.stdout[-3000:], done.stderr[-3000:])
            assert "Database migration done" in done.stdout + done.stderr
        migrated = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="airflow")
        with migrated, migrated.cursor() as tables:
            tables.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'dag_run'")
            assert tables.fetchone() == (1,)
        migrated.close()
    finally:
        cursor.execute("DROP DATABASE IF EXISTS airflow WITH (FORCE)")
        if made_db:
            cursor.execute("DROP DATABASE IF EXISTS mlflow WITH (FORCE)")
        if made_role:
            cursor.execute("DROP ROLE IF EXISTS mlflow")
        admin.close()


def airflow_image_tag() -> str:
    """The Makefile's AIRFLOW_IMAGE_TAG: a hash of what defines the Airflow image."""
    return subprocess.run(
        "cat docker/airflow.Dockerfile airflow/uv.lock airflow/pyproject.toml | sha256sum | cut -c1-12",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


MISSING_PYTHON = """
import json, sys
sys.path.insert(0, sys.argv[1])
import mlpipeline_dag
try:
    mlpipeline_dag.run_stage("ingest", "")
except Exception as exc:
    print("FAILED=" + json.dumps([type(exc).__name__, str(exc)]))
"""


def test_a_worker_without_the_projects_python_says_what_to_do(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "home", REPO, MLPIPELINE_PYTHON=str(tmp_path / "no-venv" / "python"))
    kind, message = in_airflow(MISSING_PYTHON, "FAILED=", env)
    assert kind == "AirflowFailException"  # fails the task without retries
    assert f"no project Python at {tmp_path / 'no-venv' / 'python'}" in message
    assert "make setup" in message
