"""MLflow: one run per pipeline run (train opens it, evaluate and promote resume it), model logging, loading.

MLflow is imported inside functions only: the stages that do not track never pay for it. MLflow's exceptions
are translated here into the project's errors, by type: a connection failure anywhere in an error's chain
is a service being unreachable, whatever the message says.

A stage holds a *lease* while it has a run open: an exclusive lock on a file under ``.mlpipeline/leases`` that
names the run. The kernel releases the lock when the process dies, however it dies, so the next stage that
opens a run finds the leases nobody holds and marks their runs FAILED instead of leaving them RUNNING forever. A
lease file is removed only once its run has ended, so a run whose closing failed (the tracking server died
mid-stage) is swept the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mlpipeline.errors import MlpipelineError, ServiceUnavailableError, bring_up_hint, causes
from mlpipeline.settings import DEFAULT_TRACKING_URI, env_settings, project_root

logger = logging.getLogger(__name__)

MODEL_NAME = "model"
LEASES = Path(".mlpipeline/leases")
# Tags that find a model's run again (the run id is never written into a DVC output).
MODEL_MD5_TAG = "mlpipeline.model_md5"
ORPHANED_TAG = "mlpipeline.orphaned"
ORPHANED_BECAUSE = "its stage process died, or lost the tracking server, before closing it"


def configure() -> str:
    """Point MLflow at the configured tracking URI, checking that a remote server answers; return the URI."""
    import mlflow

    settings = env_settings()
    uri = settings.mlflow_tracking_uri
    # MLflow reads its credentials from the process environment only; .env values are passed on here.
    if settings.mlflow_tracking_username:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", settings.mlflow_tracking_username)
    if settings.mlflow_tracking_password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", settings.mlflow_tracking_password.get_secret_value())
    if uri == DEFAULT_TRACKING_URI:
        uri = f"sqlite:///{project_root() / 'mlflow.db'}"
    if uri.startswith(("http://", "https://")):
        # Fail in seconds, not after MLflow's default minutes of retries, when the server is down.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def _check_server(uri: str, timeout: float = 3.0) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ServiceUnavailableError(
                f"MLflow tracking server {uri} refused the credentials (HTTP {exc.code}): check "
                "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
            ) from exc
        # Some proxies do not route /health; anything that answered HTTP is up.
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailableError(
            f"MLflow tracking server {uri} is not reachable ({reason}): {bring_up_hint(uri)}, or unset "
            "MLFLOW_TRACKING_URI to use the local store"
        ) from exc


def _unreachable(exc: BaseException) -> bool:
    """Whether a connection failure or timeout is anywhere in ``exc``'s chain (MLflow wraps requests' errors)."""
    requests = sys.modules.get("requests")  # if MLflow never imported it, none of its errors can be in the chain
    kinds: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    if requests is not None:
        kinds += (requests.ConnectionError, requests.Timeout)
    return any(isinstance(current, kinds) for current in causes(exc))


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn MLflow and connection errors into our errors, naming what was being done."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _unreachable(exc):
            raise ServiceUnavailableError(f"MLflow: {action} failed, server unreachable: {message}") from exc
        raise MlpipelineError(f"MLflow: {action} failed: {message}") from exc
    except (ConnectionError, TimeoutError) as exc:
        raise ServiceUnavailableError(f"MLflow: {action} failed, server unreachable: {exc}") from exc


def client() -> Any:
    """An MlflowClient on the configured tracking URI (call :func:`configure` first)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient()


class _Lease:
    """An exclusive lock on a lease file naming the runs this process has open, released when it ends or dies."""

    def __init__(self, handle: IO[str], path: Path) -> None:
        self.handle, self.path = handle, path
        self.closed = False  # every run it names was ended: only then may the lease file go

    def record(self, run_id: str) -> None:
        self.handle.write(json.dumps({"run_id": run_id, "tracking_uri": _uri()}) + "\n")
        self.handle.flush()


def _uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def _leases() -> Path:
    return project_root() / LEASES


@contextlib.contextmanager
def _lease() -> Iterator[_Lease]:
    folder = _leases()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.lease"
    with path.open("w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        lease = _Lease(handle, path)
        try:
            yield lease
        finally:
            if lease.closed:  # else it stays, unlocked when the handle closes: the next sweep marks its run FAILED
                path.unlink(missing_ok=True)


def sweep_orphans() -> list[str]:
    """Mark FAILED the RUNNING runs of leases nobody holds (their stage was killed); return those run ids."""
    folder = _leases()
    if not folder.is_dir():
        return []
    failed = []
    uri = _uri()
    for path in sorted(folder.glob("*.lease")):
        try:
            handle = path.open("r", encoding="utf-8")
        except FileNotFoundError:  # its holder finished meanwhile
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live stage holds it
            entries = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
            if any(entry.get("tracking_uri") != uri for entry in entries):
                continue  # another store's run: swept when that store is in use
            for entry in entries:
                with translate_errors(f"closing orphaned run {entry['run_id']}"):
                    run = client().get_run(entry["run_id"])
                    if run.info.status == "RUNNING":
                        client().set_tag(entry["run_id"], ORPHANED_TAG, ORPHANED_BECAUSE)
                        client().set_terminated(entry["run_id"], status="FAILED")
                        failed.append(entry["run_id"])
                        logger.warning("marked run %s FAILED: %s", entry["run_id"], ORPHANED_BECAUSE)
            path.unlink(missing_ok=True)
    return failed


@contextlib.contextmanager
def start_run(experiment: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """Create (or reuse) the experiment and open a new run under a lease; FINISHED on success, else FAILED."""
    import mlflow

    with translate_errors(f"starting a run in experiment {experiment!r}"):
        sweep_orphans()
        if mlflow.get_tracking_uri().startswith("sqlite:") and mlflow.get_experiment_by_name(experiment) is None:
            # Pin the artifact root to the project, not to whatever directory created the experiment.
            mlflow.create_experiment(experiment, artifact_location=(project_root() / "mlruns").as_uri())
        mlflow.set_experiment(experiment)
    with _lease() as lease:
        with translate_errors(f"starting a run in experiment {experiment!r}"):
            active = mlflow.start_run(tags=tags)
        lease.record(active.info.run_id)
        with _ending(active, lease):
            yield active


@contextlib.contextmanager
def resume_run(run_id: str) -> Iterator[Any]:
    """Reopen the run train started, so evaluate and promote log to the same run."""
    import mlflow

    with translate_errors(f"resuming run {run_id}"):
        sweep_orphans()
    with _lease() as lease:
        lease.record(run_id)
        with translate_errors(f"resuming run {run_id}"):
            active = mlflow.start_run(run_id=run_id)
        with _ending(active, lease):
            yield active


@contextlib.contextmanager
def _ending(active: Any, lease: _Lease) -> Iterator[None]:
    """End the run FINISHED, or FAILED if the stage raised; the lease is released only once the run has ended.

    If ending it fails (the tracking server died mid-stage), the stage's own error wins, else that failure is
    raised as ours (exit 4 when the server is unreachable); either way the lease file stays for the next sweep.
    """
    import mlflow

    run_id = active.info.run_id
    try:
        yield
    except BaseException:
        try:
            with translate_errors(f"marking run {run_id} FAILED"):
                mlflow.end_run("FAILED")
            lease.closed = True
        except MlpipelineError as exc:
            logger.warning("%s: the next stage that opens a run marks it FAILED", exc)
        raise
    with translate_errors(f"closing run {run_id} (its results may be partly logged; run the stage again)"):
        mlflow.end_run("FINISHED")
    lease.closed = True


def log_model_dir(path: Path, registered_model: str, run: Any, tags: dict[str, str]) -> str:
    """Log the model directory ``path`` (its exact bytes) as the run's model; register it; return the version."""
    import mlflow
    from mlflow.entities import LoggedModelOutput

    with translate_errors(f"logging and registering model {registered_model!r}"):
        logged = mlflow.initialize_logged_model(
            name=MODEL_NAME, source_run_id=run.info.run_id, experiment_id=run.info.experiment_id, tags=tags
        )
        registry = client()
        try:
            registry.log_model_artifacts(logged.model_id, str(path))
        except Exception:
            registry.finalize_logged_model(logged.model_id, "FAILED")
            raise
        registry.finalize_logged_model(logged.model_id, "READY")
        registry.log_outputs(run.info.run_id, [LoggedModelOutput(model_id=logged.model_id, step=0)])
        version = mlflow.register_model(f"models:/{logged.model_id}", registered_model, tags=tags)
    return str(version.version)


def find_model_run(experiment: str, model_md5: str, prefer_experiment: str | None = None) -> str:
    """The run that logged the model with this md5 (the newest; one of this DVC experiment's if there is one).

    DVC outputs carry no run ids (they would differ on every run), so evaluate finds train's run by the hash of
    the model file it scores: the same bytes train logged, because the model directory is canonical.
    """
    import mlflow

    with translate_errors(f"finding the run of model {model_md5}"):
        found = mlflow.get_experiment_by_name(experiment)
        runs = (
            []
            if found is None
            else client().search_runs(
                [found.experiment_id],
                filter_string=f"tags.`{MODEL_MD5_TAG}` = '{model_md5}'",
                order_by=["attributes.start_time DESC"],
                max_results=50,
            )
        )
    usable = [run for run in runs if run.info.status != "FAILED"]
    if prefer_experiment:
        ours = [run for run in usable if run.data.tags.get("dvc.experiment") == prefer_experiment]
        usable = ours or usable
    if not usable:
        raise MlpipelineError(
            f"no MLflow run in experiment {experiment!r} holds the model in models/model (md5 {model_md5}): the "
            f"tracking store {_uri()} does not know it. Train it again: `dvc repro --force --single-item train`"
        )
    return str(usable[0].info.run_id)


def load_model_with_meta(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """Download a model (e.g. ``models:/iris-classifier/3``); return it with its MLmodel description."""
    import mlflow.artifacts

    from mlpipeline.io import modeldir

    with tempfile.TemporaryDirectory(prefix="mlpipeline-model-") as tmp:
        with translate_errors(f"downloading {model_uri}"):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return modeldir.load(local), modeldir.read_mlmodel(local)


def download_run_artifact(run_id: str, artifact_path: str, dst: Path) -> Path | None:
    """Download one file a run logged into ``dst``; None when the run has no such artifact."""
    import mlflow.artifacts

    folder = str(Path(artifact_path).parent)
    with translate_errors(f"reading the artifacts of run {run_id}"):
        listed = {item.path for item in client().list_artifacts(run_id, None if folder == "." else folder)}
        if artifact_path not in listed:
            return None
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))


def load_model(model_uri: str) -> Any:
    """Download a model and load it safely (skops, fixed allow-list)."""
    return load_model_with_meta(model_uri)[0]
