"""The team stack against real processes: an S3 server (moto, standing in for MinIO), the machine's PostgreSQL,
and an `mlflow server` backed by PostgreSQL with artifacts proxied to S3.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth); skipped with the reason otherwise, unless
MLPIPELINE_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import VENV_BIN, Project, copy_project
from tests.integration.conftest import GRAPH, STAGES, ran
from tests.integration.services import KEY_ID, SECRET, Service, clean_env, compose_config, free_port, s3_client
from tests.integration.test_pipeline import DETERMINISTIC, file_hashes

pytestmark = [pytest.mark.integration, pytest.mark.server, pytest.mark.xdist_group("team-stack")]


def team_project(tmp_path: Path, **env: str) -> Project:
    project = Project(copy_project(tmp_path / "project"))
    project.env = {k: v for k, v in project.env.items() if not k.startswith("AWS_")}
    project.env.update(env)
    return project


def test_pipeline_logs_to_the_tracking_server_with_artifacts_in_s3(
    tracking_server: Service, s3: Service, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    project = team_project(tmp_path, MLFLOW_TRACKING_URI=tracking_server.url)
    assert not any(k.startswith("AWS_") for k in project.env)  # the pipeline has no S3 credentials at all
    result = project.repro()
    assert ran(result.stdout) == STAGES
    assert SECRET not in result.stdout + result.stderr

    client = MlflowClient(tracking_uri=tracking_server.url)
    champion = client.get_model_version_by_alias("iris-classifier", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.params["n_estimators"] == "100"
    assert {"train_accuracy", "test_accuracy", "test_f1_macro"} <= set(run.data.metrics)
    assert SECRET not in str(run.data.params) + str(run.data.tags)
    keys = [o["Key"] for o in s3_client(s3.url).list_objects_v2(Bucket="mlflow-artifacts").get("Contents", [])]
    assert any(k.endswith("model.skops") for k in keys), keys
    assert any(k.endswith("evaluation/confusion_matrix.png") for k in keys), keys
    assert not project.path("mlruns").exists()  # nothing went to a local store
    assert not project.path("mlflow.db").exists()


def test_tracking_server_down_fails_fast_and_registers_nothing(tracking_server: Service, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    project = team_project(tmp_path, MLFLOW_TRACKING_URI=tracking_server.url)
    for stage in GRAPH.needs("train")[1:]:  # what train reads, made first (check-params aside)
        project.run("mlpipeline", stage)
    client = MlflowClient(tracking_uri=tracking_server.url)
    before = len(client.search_model_versions("name='iris-classifier'"))
    tracking_server.stop()
    try:
        start = time.monotonic()
        failed = project.run("mlpipeline", "train", check=False)
        elapsed = time.monotonic() - start
    finally:
        tracking_server.start()
    assert failed.returncode == 4
    assert f"MLflow tracking server {tracking_server.url} is not reachable" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert elapsed < 20, f"took {elapsed:.1f} s to give up"
    assert len(client.search_model_versions("name='iris-classifier'")) == before
    assert not project.path("models/model").exists()
    assert not project.path("models/model_metadata.json").exists()


# Holds a run open until told to go on, then lets it end as a stage's would: the exit code of the error, if any.
HOLD_A_RUN = """
import sys
from mlpipeline.errors import MlpipelineError
from mlpipeline.io import tracking
tracking.configure()
try:
    with tracking.start_run("held-open") as run:
        print(run.info.run_id, flush=True)
        sys.stdin.readline()
except MlpipelineError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def test_a_tracking_server_that_dies_mid_run_leaves_no_run_running(tracking_server: Service, tmp_path: Path) -> None:
    """The run cannot be closed (the server is gone): the stage exits 4 naming that, and the next run, with the
    server back, marks it FAILED with the reason instead of it staying RUNNING forever."""
    import subprocess

    from mlflow.tracking import MlflowClient

    project = team_project(tmp_path, MLFLOW_TRACKING_URI=tracking_server.url)
    held = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", HOLD_A_RUN],
        cwd=project.root,
        env=project.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert held.stdout is not None
    run_id = held.stdout.readline().strip()
    client = MlflowClient(tracking_uri=tracking_server.url)
    assert client.get_run(run_id).info.status == "RUNNING"
    tracking_server.stop()
    try:
        _, stderr = held.communicate("go on\n", timeout=120)
    finally:
        tracking_server.start()
    assert held.returncode == 4, stderr
    assert f"closing run {run_id}" in stderr, stderr
    assert "server unreachable" in stderr
    assert "Traceback" not in stderr
    assert client.get_run(run_id).info.status == "RUNNING"  # nobody could tell the server otherwise
    assert list(project.path(".mlpipeline/leases").glob("*.lease")), "the lease must stay for the next sweep"

    for stage in GRAPH.needs("train")[1:]:  # what train reads (check-params aside), then train: the next run
        project.run("mlpipeline", stage)
    trained = project.run("mlpipeline", "train")
    swept = client.get_run(run_id)
    leases = sorted(p.name for p in project.path(".mlpipeline/leases").glob("*.lease"))
    assert swept.info.status == "FAILED", f"leases left: {leases}\n{trained.stderr}"
    assert "lost the tracking server" in swept.data.tags["mlpipeline.orphaned"]


def test_dvc_push_pull_round_trip_and_faults(s3: Service, tmp_path: Path) -> None:
    project = team_project(
        tmp_path, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, MLPIPELINE_S3_ENDPOINT=s3.url
    )
    outputs = []
    project.repro()
    for _ in range(2):  # idempotent
        outputs.append(project.run("mlpipeline", "setup-remote", "--url", "s3://dvc-store/iris"))
    config = project.path(".dvc/config").read_text()
    assert "s3://dvc-store/iris" in config
    assert s3.url in config
    assert SECRET not in config
    assert SECRET in project.path(".dvc/config.local").read_text()
    assert project.run("git", "check-ignore", ".dvc/config.local").returncode == 0
    assert project.run("git", "status", "--porcelain", "--", ".dvc").stdout.strip() == "M .dvc/config"

    # S3 endpoint down during push: a clear error; once it is back, a later push completes.
    s3.stop()
    try:
        down = project.run("mlpipeline", "push", check=False)
    finally:
        s3.start()
    outputs.append(down)
    assert down.returncode == 4
    assert "is not reachable: start the team stack (`make up`)" in down.stderr
    assert "nothing was lost" in down.stderr
    outputs.append(project.run("mlpipeline", "setup-remote", "--url", "s3://dvc-store/iris"))  # fresh S3: bucket again
    outputs.append(project.run("mlpipeline", "push"))

    # The bucket aborts uploads a killed push left incomplete; transfers time out instead of hanging.
    rules = s3_client(s3.url).get_bucket_lifecycle_configuration(Bucket="dvc-store")["Rules"]
    assert [(r["ID"], r["Filter"]["Prefix"], r["AbortIncompleteMultipartUpload"]) for r in rules] == [
        ("mlpipeline-abort-incomplete-uploads:iris/", "iris/", {"DaysAfterInitiation": 1})
    ]
    assert "read_timeout = 30" in project.path(".dvc/config").read_text()

    # Delete the cache and outputs; pull gives the same bytes back and nothing needs to run.
    tracked = DETERMINISTIC
    before = file_hashes(project, tracked)
    shutil.rmtree(project.path(".dvc/cache"))
    in_git = set(project.run("git", "ls-files").stdout.split())
    for folder in ("data", "models", "metrics", "plots", "reports"):
        for path in project.path(folder).rglob("*"):
            if path.is_file() and path.relative_to(project.root).as_posix() not in in_git:
                path.unlink()
    outputs.append(project.run("mlpipeline", "pull"))
    assert file_hashes(project, tracked) == before
    assert ran(project.repro().stdout) == []

    for done in outputs:
        assert SECRET not in done.stdout + done.stderr
    tracked = [f for f in project.run("git", "ls-files", "-z").stdout.split("\0") if f]
    assert [f for f in tracked if SECRET in project.path(f).read_text(errors="ignore")] == []


def test_a_hung_s3_endpoint_fails_push_in_bounded_time_naming_it(tmp_path: Path) -> None:
    """An endpoint that accepts connections and never answers (a hung MinIO): `mlpipeline push` gives up in
    seconds with exit 4, saying so, instead of waiting silently for as long as it stays hung."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    project = team_project(tmp_path, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    project.run("dvc", "remote", "add", "-d", "storage", "s3://dvc-store/iris")
    project.run("dvc", "remote", "modify", "storage", "endpointurl", endpoint)
    project.run("dvc", "remote", "modify", "--local", "storage", "access_key_id", KEY_ID)
    project.run("dvc", "remote", "modify", "--local", "storage", "secret_access_key", SECRET)
    try:
        start = time.monotonic()
        hung = project.run("mlpipeline", "push", check=False)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
    assert hung.returncode == 4, hung.stderr
    assert f"the S3 endpoint {endpoint} of DVC remote 'storage' accepted the connection but did not answer" in (
        hung.stderr
    )
    assert "Traceback" not in hung.stderr
    assert SECRET not in hung.stdout + hung.stderr
    assert elapsed < 60, f"took {elapsed:.0f} s"


def test_compose_stack_definition(tmp_path: Path) -> None:
    from tests.conftest import REPO

    config = compose_config(tmp_path)
    services = config["services"]
    assert {"dvc-runner", "serve", "minio", "minio-init", "postgres", "mlflow"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}"
            assert str(published).startswith("127.0.0.1:"), (name, port)
    assert {"minio-data", "postgres-data"} <= set(config["volumes"])
    assert all("healthcheck" in services[s] for s in ("minio", "postgres", "mlflow"))
    command = " ".join(services["mlflow"]["command"])
    assert "--serve-artifacts" in command
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")
    assert "/var/run/docker.sock" in str(services["dvc-runner"]["volumes"])
    assert "/var/run/docker.sock" not in str(services["serve"].get("volumes"))
    assert "change-me" not in (REPO / "compose.yaml").read_text()  # no secret in the tracked file
    # Without any .env, the runner and serving services still work (no team secret is required for them).
    assert {"dvc-runner", "serve"} <= set(compose_config(tmp_path, env_file=False)["services"])


def test_wrong_credentials_name_the_setting_and_never_print_the_secret(tmp_path: Path) -> None:
    import json

    import boto3

    port = free_port()
    # This S3 server checks signatures after its first calls (the probe, then three creating the only valid key).
    checking = Service(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        port,
        "/",
        {**clean_env(), "INITIAL_NO_AUTH_ACTION_COUNT": "4"},  # the health probe is one of them
    )
    checking.start()
    try:
        iam = boto3.client(
            "iam", endpoint_url=checking.url, aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
        )
        iam.create_user(UserName="dvc")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="dvc", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="dvc")["AccessKey"]
        project = team_project(
            tmp_path,
            AWS_ACCESS_KEY_ID=key["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
            MLPIPELINE_S3_ENDPOINT=checking.url,
        )
        project.repro()
        project.run("mlpipeline", "setup-remote")
        project.run("mlpipeline", "push")

        wrong = "wr0ng-" + SECRET
        project.env["AWS_SECRET_ACCESS_KEY"] = wrong
        refused = project.run("mlpipeline", "setup-remote", check=False)
        assert refused.returncode == 2
        assert "rejected the credentials" in refused.stderr
        assert "AWS_SECRET_ACCESS_KEY" in refused.stderr
        # Wrong credentials already in .dvc/config.local: push says so too.
        project.run("mlpipeline", "setup-remote", "--no-create-bucket")
        project.path("extra.txt").write_text("x")  # something new to push
        project.run("dvc", "add", "extra.txt")
        pushed = project.run("mlpipeline", "push", check=False)
        assert pushed.returncode == 2
        assert "rejected the credentials" in pushed.stderr
        assert ".dvc/config.local" in pushed.stderr
        for done in (refused, pushed):
            assert wrong not in done.stdout + done.stderr
            assert "Traceback" not in done.stderr
    finally:
        checking.stop()


def test_dagshub_config_keeps_the_token_out_of_git(tmp_path: Path) -> None:
    token = "dagshub-" + SECRET
    project = team_project(tmp_path, DAGSHUB_USER="alice", DAGSHUB_TOKEN=token, DAGSHUB_REPO="alice/iris")
    done = project.run("mlpipeline", "dagshub")
    assert token not in done.stdout + done.stderr
    config = project.path(".dvc/config").read_text()
    assert "url = s3://dvc" in config
    assert "endpointurl = https://dagshub.com/alice/iris.s3" in config
    assert "remote = origin" in config
    assert token in project.path(".dvc/config.local").read_text()
    assert project.path(".dvc/config.local").stat().st_mode & 0o077 == 0  # the owner's only
    # Only lines added: the file's other settings and its comments are kept (DVC's config writer drops comments).
    diff = project.run("git", "diff", "--numstat", "--", ".dvc/config").stdout.split()
    assert diff[1] == "0", project.run("git", "diff", "--", ".dvc/config").stdout
    assert "# Large outputs are not stored twice" in config
    again = project.run("mlpipeline", "dagshub")  # idempotent: the same file again
    assert again.returncode == 0
    assert project.path(".dvc/config").read_text() == config
    env = project.path(".env").read_text()
    assert "MLFLOW_TRACKING_URI=https://dagshub.com/alice/iris.mlflow" in env
    assert "MLFLOW_TRACKING_USERNAME=alice" in env
    assert project.run("git", "status", "--porcelain").stdout.strip() == "M .dvc/config"
    tracked = project.run("git", "ls-files", "-z").stdout.split("\0")
    assert not [
        f for f in tracked if f and project.path(f).is_file() and token in project.path(f).read_text(errors="ignore")
    ]
    missing = team_project(tmp_path / "other", DAGSHUB_USER="alice")
    failed = missing.run("mlpipeline", "dagshub", check=False)
    assert failed.returncode == 2
    assert "set DAGSHUB_TOKEN, DAGSHUB_REPO" in failed.stderr


def test_no_secret_in_images() -> None:
    try:
        import docker

        engine = docker.from_env(timeout=5)
        images = [i for i in engine.images.list() if any(t.startswith("mlpipeline-") for t in i.tags)]
    except Exception as exc:
        pytest.skip(f"no Docker engine ({type(exc).__name__})")
    if not images:
        pytest.skip("no mlpipeline images built")
    for image in images:
        layers = str(image.history()) + str(image.attrs.get("Config", {}).get("Env"))
        for marker in ("AWS_SECRET_ACCESS_KEY=", "MLFLOW_TRACKING_PASSWORD=", "DAGSHUB_TOKEN=", SECRET):
            assert marker not in layers, (image.tags, marker)


def test_compose_monitoring_profile_definition(tmp_path: Path) -> None:
    from tests.conftest import REPO

    services = compose_config(tmp_path, "monitoring")["services"]
    assert {"prometheus", "grafana", "serve", "monitor"} <= set(services)
    # The drift watcher: the serve image, non-root, no port, checking hourly by default, with the server's settings.
    watcher = services["monitor"]
    assert watcher["image"].startswith("mlpipeline-serve:")
    assert watcher["command"] == ["python", "-m", "mlpipeline", "monitor", "--every", "3600"]
    assert not watcher.get("ports")
    assert not str(watcher["user"]).startswith("0:")
    assert watcher["working_dir"] == str(tmp_path)
    served = {k: v for k, v in services["serve"]["environment"].items() if k != "MLPIPELINE_SERVE_POLL_SECONDS"}
    assert served.items() <= watcher["environment"].items()  # the same tracking server and prediction log
    assert "MLPIPELINE_AIRFLOW_URL" in watcher["environment"]
    for name in ("prometheus", "grafana"):
        for port in services[name]["ports"]:
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}"
            assert str(published).startswith("127.0.0.1:"), (name, port)
    mounts = str(services["prometheus"]["volumes"]) + str(services["grafana"]["volumes"])
    for config in ("prometheus.yml", "alerts.yml", "grafana/provisioning", "grafana/dashboards"):
        assert f"monitoring/{config}" in mounts
    scrape = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == ["serve:8000"]  # the compose service, on the stack's network
    assert "change-me" not in (REPO / "compose.yaml").read_text()
