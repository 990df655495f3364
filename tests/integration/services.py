"""Real service processes for the integration tier: an S3 server (moto, standing in for MinIO), a database on the
machine's PostgreSQL, and an `mlflow server` backed by it with artifacts proxied to S3.

PostgreSQL must be on 127.0.0.1:5432 (trust auth); tests are skipped with the reason otherwise, unless
MLPIPELINE_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure. The fixtures are module-scoped
and registered in conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VENV_BIN

SECRET = "tEsT-s3cr3t-" + uuid.uuid4().hex  # must never show up in a file, log line or MLflow param
KEY_ID = "AKIDTESTKEY000000000"
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up in {timeout} s")


class Service:
    """A server process on a fixed loopback port that tests can stop and start again."""

    def __init__(self, cmd: list[str], port: int, health: str, env: dict[str, str]) -> None:
        self.cmd, self.port, self.health, self.env = cmd, port, health, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"{Path(cmd[0]).name}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Its log goes to a file: a pipe nobody reads fills up after a few hundred requests, and the server
        # then blocks on its next log line (a hang that looks like a slow S3 server).
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
        wait_http(self.url + self.health, self.proc, log=self.log_path)

    def stop(self) -> None:
        if self.proc:
            stop_group(self.proc)
        self.log_path.unlink(missing_ok=True)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started: TERM, then KILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def served(root: Path, env: dict[str, str], log: Path) -> Iterator[int]:
    """`mlpipeline serve` on a free loopback port of the project at ``root``, ready; stopped on exit."""
    port = free_port()
    with log.open("w") as handle:
        server = subprocess.Popen(
            ["mlpipeline", "serve", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", server, timeout=60, log=log)
        yield port
    finally:
        stop_group(server)


def post_json(port: int, path: str, body: Any) -> tuple[int, Any]:
    """POST ``body`` as JSON to the local server: the status and the decoded answer (errors too)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "MLPIPELINE_", "DVC_"))}


def s3_client(url: str, secret: str = SECRET):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=KEY_ID, aws_secret_access_key=secret, region_name="us-east-1"
    )


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    import psycopg2

    name = f"mlflow_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL not reachable on 127.0.0.1:5432 ({str(exc).strip()})"
        if os.environ.get("MLPIPELINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"MLPIPELINE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield name
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[Service]:
    port = free_port()
    service = Service([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, "/", clean_env())
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def tracking_server(database: str, s3: Service) -> Iterator[Service]:
    s3_client(s3.url).create_bucket(Bucket="mlflow-artifacts")
    port = free_port()
    env = {
        **clean_env(),
        "MLFLOW_S3_ENDPOINT_URL": s3.url,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,  # the server's own; the pipeline never gets them
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    cmd = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"{PG}/{database}",
        "--serve-artifacts",
        "--artifacts-destination",
        "s3://mlflow-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    service = Service(cmd, port, "/health", env)
    service.start()
    yield service
    service.stop()


def compose_config(tmp_path: Path, *profiles: str, env_file: bool = True) -> dict[str, Any]:
    """``docker-compose [--profile P] config`` of the repo's compose.yaml in ``tmp_path`` (with .env.example as
    .env unless ``env_file`` is false), parsed; skips when docker-compose is not installed."""
    import shutil

    import pytest
    import yaml

    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed")
    from tests.conftest import REPO

    shutil.copy(REPO / "compose.yaml", tmp_path / "compose.yaml")
    if env_file:
        shutil.copy(REPO / ".env.example", tmp_path / ".env")
    else:
        (tmp_path / ".env").unlink(missing_ok=True)
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        [compose, *flags, "config"],
        cwd=tmp_path,
        env={**clean_env(), "PROJECT_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config
