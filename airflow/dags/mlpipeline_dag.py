"""mlpipeline on Airflow: one task per DVC stage, wired as dvc.yaml wires them.

The stage graph is not written here: it is read from ``pipeline.json`` beside this file, which
``mlpipeline airflow-spec`` generates from dvc.yaml (the edges ``dvc dag`` draws; a test fails when it is stale).
This file imports nothing of the project, so the DAG processor parses it in Airflow's own environment.

Every task runs ``mlpipeline task <stage> --commit <the run's commit>`` in a workspace, a clone of the project:
that checks out the commit, runs ``dvc repro --pull <stage>`` (upstream outputs come from the DVC remote or
DVC's run-cache, an unchanged stage is skipped) and pushes the stage's outputs and run-cache entry. Workers share
only the DVC remote (S3) and the MLflow server.

Configuration (environment of the Airflow processes; never secrets):
- ``MLPIPELINE_AIRFLOW_OPERATOR``: ``local`` (default: a subprocess on the worker, for development and Celery
  workers with a clone of their own), ``docker`` (the runner image, which starts each stage's own image as a
  sibling container through the Docker socket) or ``kubernetes`` (a pod per task, cloning the project).
- ``MLPIPELINE_WORKSPACE``: the worker's clone (local and docker); ``MLPIPELINE_IMAGE_TAG``: the images' tag
  (docker, kubernetes; default ``latest``); ``MLPIPELINE_DOCKER_NETWORK``: the network the runner and stage
  containers join (default ``none``: no network, right for the embedded defaults);
  ``MLPIPELINE_GIT_URL``, ``MLPIPELINE_K8S_NAMESPACE``, ``MLPIPELINE_K8S_SECRET`` (kubernetes);
  ``MLPIPELINE_AIRFLOW_QUEUES``: Celery queues of some stages, e.g. ``train=big,evaluate=big`` (workers started
  with ``airflow celery worker --queues big`` take those; the others go to the default queue).

Services and secrets come from Airflow connections, read when a task runs (never at parse time, never into
the DAG file, rendered templates, logs or XCom): ``mlpipeline_mlflow`` (the tracking server: host, port,
login/password) and ``mlpipeline_s3`` (login and password are the S3 key pair; extra ``endpoint_url`` and
``remote_url``). Without them the worker's own environment applies. On Kubernetes they come from the Secret
``MLPIPELINE_K8S_SECRET`` instead.

Runs never overlap: ``max_active_runs=1``, and ``mlpipeline task`` also holds a lock on its workspace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param

SPEC = json.loads(Path(__file__).with_name("pipeline.json").read_text(encoding="utf-8"))
OPERATORS = ("local", "docker", "kubernetes")
OPERATOR = os.environ.get("MLPIPELINE_AIRFLOW_OPERATOR", "local")
if OPERATOR not in OPERATORS:
    raise ValueError(f"MLPIPELINE_AIRFLOW_OPERATOR={OPERATOR!r}: use one of {', '.join(OPERATORS)}")
IMAGE_TAG = os.environ.get("MLPIPELINE_IMAGE_TAG", "latest")
COMMIT = "{{ params.commit }}"


def _queues(text: str) -> dict[str, str]:
    queues = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        stage, sep, queue = item.partition("=")
        if not sep or not stage.strip() or not queue.strip():
            raise ValueError(f"MLPIPELINE_AIRFLOW_QUEUES: {item!r} is not <stage>=<queue>")
        queues[stage.strip()] = queue.strip()
    unknown = set(queues) - {stage["name"] for stage in SPEC["stages"]}
    if unknown:
        raise ValueError(f"MLPIPELINE_AIRFLOW_QUEUES names stages that dvc.yaml does not have: {sorted(unknown)}")
    return queues


QUEUES = _queues(os.environ.get("MLPIPELINE_AIRFLOW_QUEUES", ""))
# Variables a stage process must not inherit from Airflow's: its settings, connections and Python environment.
AIRFLOW_ONLY = ("AIRFLOW", "_AIRFLOW", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")


def _connection(conn_id: str) -> Any:
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # not defined: the worker's environment applies
        return None


def service_env() -> dict[str, str]:
    """MLflow and S3 settings from the Airflow connections, as the environment the pipeline reads."""
    env: dict[str, str] = {}
    mlflow = _connection("mlpipeline_mlflow")
    if mlflow is not None and mlflow.host:
        if "://" in mlflow.host:
            env["MLFLOW_TRACKING_URI"] = mlflow.host
        else:
            scheme = "https" if mlflow.conn_type == "https" else "http"
            port = f":{mlflow.port}" if mlflow.port else ""
            env["MLFLOW_TRACKING_URI"] = f"{scheme}://{mlflow.host}{port}"
        if mlflow.login:
            env["MLFLOW_TRACKING_USERNAME"] = mlflow.login
        if mlflow.password:
            env["MLFLOW_TRACKING_PASSWORD"] = mlflow.password
    s3 = _connection("mlpipeline_s3")
    if s3 is not None:
        extra = s3.extra_dejson or {}
        for key, value in (
            ("AWS_ACCESS_KEY_ID", s3.login),
            ("AWS_SECRET_ACCESS_KEY", s3.password),
            ("MLPIPELINE_S3_ENDPOINT", extra.get("endpoint_url")),
            ("MLPIPELINE_REMOTE_URL", extra.get("remote_url")),
        ):
            if value:
                env[key] = str(value)
    return env


def workspace() -> Path:
    root = Path(os.environ.get("MLPIPELINE_WORKSPACE", ""))
    if not str(root) or not (root / "dvc.yaml").is_file():
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"MLPIPELINE_WORKSPACE={str(root)!r} is not a clone of the project (no dvc.yaml there): set it, in the "
            "worker's environment, to this worker's own clone"
        )
    return root


def run_stage(stage: str, commit: str) -> None:
    """The local operator: ``mlpipeline task`` in the worker's workspace, its output in the task log."""
    import logging
    import subprocess

    from airflow.sdk.exceptions import AirflowFailException

    log = logging.getLogger("mlpipeline.airflow")
    root = workspace()
    python = os.environ.get("MLPIPELINE_PYTHON") or str(root / ".venv" / "bin" / "python")
    if not os.access(python, os.X_OK):
        raise AirflowFailException(
            f"no project Python at {python}: run `make setup` in the workspace {root}, or set MLPIPELINE_PYTHON "
            "in the worker's environment to a Python with the project's dependencies"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(AIRFLOW_ONLY)}
    env.update(service_env())
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root / "src")
    cmd = [python, "-m", "mlpipeline", "task", stage, *(["--commit", commit] if commit else [])]
    errors: list[str] = []
    with subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.info("%s", line.rstrip())
            if line.startswith("ERROR"):
                errors.append(line.strip())
    if proc.returncode != 0:
        # Deterministic: the same inputs fail the same way, so no retry; fix the cause, then clear the task.
        raise AirflowFailException(f"stage {stage} failed: {errors[-1] if errors else f'exit {proc.returncode}'}")


def local_task(stage: str) -> Any:
    from airflow.providers.standard.operators.python import PythonOperator

    return PythonOperator(task_id=stage, python_callable=run_stage, op_kwargs={"stage": stage, "commit": COMMIT})


PASSED_ON = ("MLFLOW_TRACKING_URI", "MLPIPELINE_REMOTE_URL", "MLPIPELINE_S3_ENDPOINT")


def _owner(path: str) -> int:
    """The workspace owner's uid, for the containers (so outputs belong to them); never root."""
    uid = os.stat(path).st_uid if os.path.exists(path) else 10001
    return uid or 10001


def docker_task(stage: str) -> Any:
    from airflow.providers.docker.operators.docker import DockerOperator
    from docker.types import Mount

    class StageRunner(DockerOperator):  # type: ignore[misc]
        """The runner image; service secrets are added when the task runs, into the container only."""

        def execute(self, context: Any) -> Any:
            self._private_environment = {**self._private_environment, **service_env()}
            return super().execute(context)

    root = os.environ.get("MLPIPELINE_WORKSPACE", "/MLPIPELINE_WORKSPACE-is-not-set")
    socket = os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock")
    socket_gid = os.stat(socket).st_gid if os.path.exists(socket) else 0
    return StageRunner(
        task_id=stage,
        image=f"mlpipeline-runner:{IMAGE_TAG}",
        command=["sh", "-c", f'exec python -m mlpipeline task {stage} ${{COMMIT:+--commit "$COMMIT"}}'],
        working_dir=root,
        # The workspace at the same path in every container (the runner's stage containers mount it too);
        # the socket's group as the runner's group, so a non-root runner may start sibling containers.
        user=f"{os.environ.get('MLPIPELINE_UID') or _owner(root)}:{socket_gid}",
        mounts=[
            Mount(target=root, source=root, type="bind"),
            Mount(target="/var/run/docker.sock", source=socket, type="bind"),
        ],
        environment={
            # Where the services are (never their secrets: those go in private_environment when the task runs).
            **{k: os.environ[k] for k in PASSED_ON if os.environ.get(k)},
            "COMMIT": COMMIT,
            "MLPIPELINE_RUNTIME": "docker",
            "MLPIPELINE_DOCKER_NETWORK": os.environ.get("MLPIPELINE_DOCKER_NETWORK", "none"),
            "MLPIPELINE_IMAGE_TAG": IMAGE_TAG,
            "PYTHONPATH": f"{root}/src",
            "HOME": "/tmp",
            "USER": "mlpipeline",
            "LOGNAME": "mlpipeline",
        },
        network_mode=os.environ.get("MLPIPELINE_DOCKER_NETWORK", "none"),
        mount_tmp_dir=False,
        auto_remove="success",
    )


def kubernetes_task(stage: str) -> Any:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    script = (
        'git clone --quiet "$MLPIPELINE_GIT_URL" /work/project && cd /work/project && '
        f'exec python -m mlpipeline task {stage} ${{COMMIT:+--commit "$COMMIT"}}'
    )
    return KubernetesPodOperator(
        task_id=stage,
        name=f"mlpipeline-{stage}",
        namespace=os.environ.get("MLPIPELINE_K8S_NAMESPACE", "mlpipeline"),
        image=f"mlpipeline-worker:{IMAGE_TAG}",
        cmds=["sh", "-c"],
        arguments=[script],
        env_vars={
            "COMMIT": COMMIT,
            "MLPIPELINE_GIT_URL": os.environ.get("MLPIPELINE_GIT_URL", ""),
            "MLPIPELINE_RUNTIME": "local",  # the pod is the stage's container
            "PYTHONPATH": "/work/project/src",
            "HOME": "/tmp",
        },
        # Every key of the Secret (AWS_*, MLFLOW_TRACKING_*, MLPIPELINE_REMOTE_URL, ...) as an env variable.
        secrets=[Secret("env", None, os.environ.get("MLPIPELINE_K8S_SECRET", "mlpipeline-credentials"))],
        volumes=[k8s.V1Volume(name="work", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[k8s.V1VolumeMount(name="work", mount_path="/work")],
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=10001, fs_group=10001),
        container_security_context=k8s.V1SecurityContext(allow_privilege_escalation=False),
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
    )


FACTORIES = {"local": local_task, "docker": docker_task, "kubernetes": kubernetes_task}

with DAG(
    dag_id="mlpipeline",
    description=" -> ".join(stage["name"] for stage in SPEC["stages"]) + ", as dvc.yaml defines it",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    params={"commit": Param("", type="string", description="Commit to run (default: the workspace as it is)")},
    tags=["mlpipeline"],
    default_args={"retries": 0},
) as dag:
    tasks = {entry["name"]: FACTORIES[OPERATOR](entry["name"]) for entry in SPEC["stages"]}
    for name, queue in QUEUES.items():
        tasks[name].queue = queue
    for entry in SPEC["stages"]:
        for upstream in entry["upstream"]:
            tasks[upstream] >> tasks[entry["name"]]
