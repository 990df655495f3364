"""`mlpipeline monitor` as a user runs it: the pipeline, a real server logging predictions, then the monitor.

One project copy: `make run`, `mlpipeline serve`, fresh Iris-like traffic (no drift, exit 0), then shifted
traffic (drift, exit 7, Evidently's report agreeing, champion untouched), a retraining run through the pipeline,
the reference found through lineage when the run's artifact is gone, and the clear errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from mlpipeline.errors import EXIT_CONFIG, EXIT_DRIFT, EXIT_ERROR
from tests import datasets
from tests.conftest import REPO, Project
from tests.integration.services import free_port, stop_group, wait_http

pytestmark = pytest.mark.integration

REPORT_PYTHON = REPO / "monitoring" / "drift" / ".venv" / "bin" / "python"


def send(port: int, rows: int, shift: float, seed: int) -> None:
    """POST ``rows`` fresh (or shifted) Iris-like rows, 20 a request; every request must succeed."""
    frame, _ = datasets.iris_like(np.random.default_rng(seed), rows, shift)
    records = frame.to_dict(orient="records")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for start in range(0, rows, 20):
            answer = client.post("/predict", json={"rows": records[start : start + 20]})
            assert answer.status_code == 200, answer.text


def wait_logged(project: Project, rows: int) -> None:
    """Until the server's log holds ``rows`` rows (its writer flushes every 50 ms)."""
    from mlpipeline.monitoring.predictions import read_log

    deadline = time.monotonic() + 30
    while len(read_log(project.path("logs/predictions"))) < rows:
        assert time.monotonic() < deadline, "the prediction log did not catch up in 30 s"
        time.sleep(0.1)


def monitor(project: Project, *args: str, evidently: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(project.env)
    if evidently:
        env["MLPIPELINE_DRIFT_REPORT_PYTHON"] = str(REPORT_PYTHON)
    return subprocess.run(
        ["mlpipeline", "monitor", *args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def summary(project: Project) -> dict[str, object]:
    data: dict[str, object] = json.loads(project.path("reports/drift/summary.json").read_text())
    return data


def champion(project: Project) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.path('mlflow.db')}")
    return str(client.get_model_version_by_alias("iris-classifier", "champion").version)


def monitoring_runs(project: Project) -> list[object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.path('mlflow.db')}")
    experiment = client.get_experiment_by_name("iris-monitoring")
    return [] if experiment is None else client.search_runs([experiment.experiment_id], order_by=["start_time"])


def test_monitor_a_served_champion_from_fresh_traffic_to_drift(project: Project, tmp_path: Path) -> None:
    drift_env_removed = not (REPO / "monitoring" / "drift").is_dir()  # docs/adapt.md, "Removing a part"
    if not REPORT_PYTHON.is_file() and os.environ.get("MLPIPELINE_REQUIRE_SERVICES") and not drift_env_removed:
        pytest.fail(f"no Evidently environment at {REPORT_PYTHON}: `make monitor-setup` (make test runs it)")
    project.make("run")
    assert champion(project) == "1"
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            ["mlpipeline", "serve", "--port", str(port)],
            cwd=project.root,
            env=project.env,
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", server, log=log)

        # Too little traffic: no verdict, a clear message, nothing written.
        send(port, 40, 0.0, seed=1)
        wait_logged(project, 40)
        done = monitor(project)
        assert done.returncode == EXIT_ERROR, done.stderr
        assert "only 40 logged rows answered by iris-classifier v1" in done.stderr
        assert "monitor.min_rows is 100" in done.stderr
        assert not project.path("reports/drift/summary.json").exists()

        # Fresh rows from the training distribution: no drift, exit 0, summary and report written and logged.
        send(port, 260, 0.0, seed=2)
        wait_logged(project, 300)
        done = monitor(project)
        assert done.returncode == 0, done.stderr
        assert "no drift" in done.stderr
        fresh = summary(project)
        assert fresh["drifted"] is False
        assert fresh["version"] == "1"
        assert fresh["current_rows"] == 300
        assert fresh["report"] == "plain"
        assert "no drift" in project.path("reports/drift/report.html").read_text()
        (run,) = monitoring_runs(project)
        assert run.data.metrics["drifted"] == 0.0  # type: ignore[attr-defined]
        assert "drift.petal_length_cm.score" in run.data.metrics  # type: ignore[attr-defined]

        # Shifted traffic: drift on every input and the prediction; Evidently's report agrees; exit 7.
        send(port, 600, 1.0, seed=3)
        wait_logged(project, 900)
        done = monitor(project, evidently=REPORT_PYTHON.is_file())
        assert done.returncode == EXIT_DRIFT, done.stderr
        assert "drift: " in done.stderr
        assert "champion unchanged" in done.stderr
        shifted = summary(project)
        assert shifted["drifted"] is True
        assert set(shifted["drifted_columns"]) == {*datasets.IRIS_FEATURES, "__prediction__"}  # type: ignore[arg-type]
        if REPORT_PYTHON.is_file():
            assert shifted["report"] == "evidently"
            ours = {c["column"]: c["score"] for c in shifted["columns"]}  # type: ignore[attr-defined]
            assert shifted["evidently"]["columns"] == pytest.approx(ours)  # type: ignore[index]
            assert shifted["evidently"]["share"] == shifted["drifted_share"]  # type: ignore[index]
            drawn = project.path("reports/drift/report.html").read_text()
            assert "installs Evidently for the full report" not in drawn  # not the plain table
            assert len(drawn) > 100_000  # Evidently's page carries its scripts and plots
        assert champion(project) == "1"
        assert len(monitoring_runs(project)) == 2

        # Retraining through the pipeline: dvc repro runs (nothing changed: nothing reruns), the gate would decide.
        done = monitor(project, "--retrain", "pipeline")
        assert done.returncode == EXIT_DRIFT, done.stderr
        assert "retrained with `dvc repro`" in done.stderr
        assert champion(project) == "1"

        # Watching (`--every`, the compose service): checks on a period; one retraining run per drift episode.
        before = len(monitoring_runs(project))
        watcher = subprocess.Popen(
            ["mlpipeline", "monitor", "--every", "1", "--retrain", "pipeline"],
            cwd=project.root,
            env=project.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240
            while len(monitoring_runs(project)) < before + 3 and watcher.poll() is None:
                assert time.monotonic() < deadline, "the watcher did not check three times in 240 s"
                time.sleep(0.5)
            watcher.send_signal(signal.SIGTERM)
            _, watched = watcher.communicate(timeout=120)
        finally:
            if watcher.poll() is None:
                stop_group(watcher)
        assert watcher.returncode == 0, watched  # SIGTERM ends the watch; drift is logged, never an exit
        assert watched.count("retrained with `dvc repro`") == 1, watched
        assert "no new retraining: one was started when this drift of v1 was first found" in watched
        assert "stopped watching for drift" in watched
        assert "Traceback" not in watched
        assert champion(project) == "1"

        # The run's reference gone: found through the model's lineage (the training split in the DVC cache).
        (artifact,) = [p for p in project.root.glob("mlruns/**/monitoring/reference.parquet")]
        artifact.unlink()
        done = monitor(project)
        assert done.returncode == EXIT_DRIFT, done.stderr
        assert summary(project)["reference_rows"] == 120

        # Mistakes: a typo in the monitor section, a missing log folder, an unknown retrain mode.
        project.set_param("monitor.drift_shar", 0.5)
        done = monitor(project)
        assert done.returncode == EXIT_CONFIG
        assert "monitor.drift_shar" in done.stderr
        project.run("git", "checkout", "params.yaml")
        done = monitor(project, "--log", "nowhere")
        assert done.returncode == EXIT_ERROR
        assert "no prediction log at nowhere" in done.stderr
        assert "Traceback" not in done.stderr
        done = monitor(project, "--retrain", "always")
        assert done.returncode == EXIT_CONFIG
        assert champion(project) == "1"
    finally:
        stop_group(server)


def test_a_drift_retrain_triggers_the_airflow_dag_through_its_rest_api(tmp_path: Path) -> None:
    """A real Airflow API server (simple auth manager, a user with a password): the monitor logs in, triggers
    the DAG with a note naming the drifted columns; a wrong password or no server is a clear error."""
    from mlpipeline.errors import ConfigError, MlpipelineError, ServiceUnavailableError
    from mlpipeline.monitoring.drift import ColumnDrift, DriftSummary
    from mlpipeline.monitoring.monitor import trigger_dag
    from mlpipeline.settings import EnvSettings
    from tests.integration.test_airflow import AIRFLOW_BIN, airflow, airflow_env

    home = tmp_path / "airflow-home"
    home.mkdir()
    password = uuid.uuid4().hex
    (home / "passwords.json").write_text(json.dumps({"monitor": password}))
    port = free_port()
    env = airflow_env(
        home,
        tmp_path,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="monitor:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
    )
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")  # the DAG in the database, as the DAG processor would put it
    log = tmp_path / "api-server.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            [str(AIRFLOW_BIN / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    drift = DriftSummary(
        [ColumnDrift("petal_length_cm", "numeric", "ks", 1e-9, 0.05, True, 120, 900)], 0.5, 120, 900, {"version": "1"}
    )

    def settings(**values: str) -> EnvSettings:
        return EnvSettings.model_validate({"MLPIPELINE_AIRFLOW_URL": url, **values})

    try:
        wait_http(f"{url}/api/v2/monitor/health", server, timeout=120, log=log)
        said = trigger_dag(settings(MLPIPELINE_AIRFLOW_USERNAME="monitor", MLPIPELINE_AIRFLOW_PASSWORD=password), drift)
        run_id = said.rsplit(" ", 1)[-1]
        assert run_id.startswith("drift__")
        token = httpx.post(f"{url}/auth/token", json={"username": "monitor", "password": password}).json()
        run = httpx.get(
            f"{url}/api/v2/dags/mlpipeline/dagRuns/{run_id}",
            headers={"authorization": f"Bearer {token['access_token']}"},
        ).json()
        assert run["conf"] == {"commit": ""}  # the workspace as it is: new data retrains, the gate decides
        assert run["note"] == "retraining: drift in petal_length_cm"
        assert run["run_type"] == "manual"

        with pytest.raises(MlpipelineError, match=r"Airflow refused to start mlpipeline.*HTTP 401"):
            trigger_dag(settings(MLPIPELINE_AIRFLOW_USERNAME="monitor", MLPIPELINE_AIRFLOW_PASSWORD="wrong"), drift)
        with pytest.raises(ConfigError, match="set MLPIPELINE_AIRFLOW_URL"):
            trigger_dag(EnvSettings.model_validate({}), drift)
    finally:
        stop_group(server)
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        trigger_dag(settings(), drift)
