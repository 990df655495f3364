"""MLflow: one run per pipeline run (train opens it, evaluate resumes it), the model registry, model loading.

MLflow is imported inside functions only: the stages that do not track never pay for it. MLflow's exceptions
and connection errors are translated here into the project's errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlpipeline.errors import MlpipelineError, ServiceUnavailableError
from mlpipeline.settings import DEFAULT_TRACKING_URI, env_settings

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
# Types skops may rebuild when loading our own models, beyond its built-in safe list. Fixed here, never read
# from the model file, so a tampered artifact cannot widen it.
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


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
        uri = f"sqlite:///{local_store_root() / 'mlflow.db'}"
    if uri.startswith(("http://", "https://")):
        # Fail in seconds, not after MLflow's default minutes of retries, when the server is down.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def local_store_root() -> Path:
    """Where the default local MLflow store lives: the DVC repo root (so `dvc exp run --temp` copies, which run
    under .dvc/tmp/exps, log to the project's store rather than a store deleted with the copy), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


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
            f"MLflow tracking server {uri} is not reachable ({reason}). Start it (`make up`) or unset "
            "MLFLOW_TRACKING_URI to use the local store"
        ) from exc


@contextlib.contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn MLflow and connection errors into our errors, naming what was being done."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "API request" in message or "Max retries" in message or "Connection" in message:
            raise ServiceUnavailableError(f"MLflow: {action} failed, server unreachable: {message}") from exc
        raise MlpipelineError(f"MLflow: {action} failed: {message}") from exc
    except (ConnectionError, TimeoutError) as exc:
        raise ServiceUnavailableError(f"MLflow: {action} failed, server unreachable: {exc}") from exc


def start_run(experiment: str, run_name: str | None = None, tags: dict[str, str] | None = None) -> Any:
    """Create (or reuse) the experiment and start a run; returns the active run (use as a context manager)."""
    import mlflow

    with translate_errors(f"starting a run in experiment {experiment!r}"):
        if mlflow.get_tracking_uri().startswith("sqlite:") and mlflow.get_experiment_by_name(experiment) is None:
            # Pin the artifact root to the project, not to whatever directory created the experiment.
            mlflow.create_experiment(experiment, artifact_location=(local_store_root() / "mlruns").as_uri())
        mlflow.set_experiment(experiment)
        return mlflow.start_run(run_name=run_name, tags=tags)


def resume_run(run_id: str) -> Any:
    """Reopen the run train started, so evaluate logs to the same run."""
    import mlflow

    with translate_errors(f"resuming run {run_id}"):
        return mlflow.start_run(run_id=run_id)


def log_model(model: Any, example: Any, registered_model: str, labels: dict[int, str]) -> Any:
    """Log ``model`` (skops format, signature, input example, pinned requirements) and register a new version.

    ``labels`` (class code -> name) goes into the model's metadata, so a server can name its predictions.
    """
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(model))) - set(SKOPS_TRUSTED_TYPES)
    if untrusted:
        raise MlpipelineError(f"model holds types our loader does not trust: {sorted(untrusted)}")
    signature = infer_signature(example, model.predict(example))
    with translate_errors(f"logging and registering model {registered_model!r}"):
        return mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            registered_model_name=registered_model,
            signature=signature,
            input_example=example,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            metadata={"labels": {str(code): name for code, name in sorted(labels.items())}},
        )


def copy_model(model_uri: str, path: Path) -> None:
    """Copy a logged model's files to ``path`` (a DVC output, loadable without a tracking server).

    Copying what was logged, rather than saving again, serializes once and guarantees the two are the same.
    """
    import mlflow.artifacts

    from mlpipeline.io.files import atomic_dir

    with atomic_dir(path) as tmp, translate_errors(f"downloading {model_uri}"):
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp))


def read_mlmodel(path: Path) -> dict[str, Any]:
    """The MLmodel file of a local model directory (flavors, signature, metadata)."""
    import yaml

    try:
        meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MlpipelineError(f"{path} is not an MLflow model directory ({exc})") from exc
    if not isinstance(meta, dict):
        raise MlpipelineError(f"{path}/MLmodel is not a mapping")
    return meta


def load_model_dir(path: Path) -> Any:
    """Load a scikit-learn model saved by this project from a local MLflow model directory.

    Only the skops format is accepted, with our fixed allow-list of types, so loading never runs code from the
    artifact (MLflow's own loader would need MLFLOW_ALLOW_PICKLE_DESERIALIZATION for that).
    """
    import skops.io

    try:
        flavor = read_mlmodel(path)["flavors"]["sklearn"]
    except (KeyError, TypeError) as exc:
        raise MlpipelineError(f"{path} is not an MLflow scikit-learn model directory ({exc})") from exc
    if flavor.get("serialization_format") != "skops":
        raise MlpipelineError(f"{path}: refusing to load a {flavor.get('serialization_format')!r} model; only skops")
    try:
        return skops.io.load(path / flavor["pickled_model"], trusted=SKOPS_TRUSTED_TYPES)
    except Exception as exc:  # skops raises its own and pickle-level errors for a damaged file
        raise MlpipelineError(f"cannot load model from {path}: {exc}") from exc


def load_model_with_meta(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """Download a model (e.g. ``models:/iris-classifier/3``); return it with its MLmodel description."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlpipeline-model-") as tmp:
        with translate_errors(f"downloading {model_uri}"):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return load_model_dir(local), read_mlmodel(local)


def load_model(model_uri: str) -> Any:
    """Download a model and load it with :func:`load_model_dir`."""
    return load_model_with_meta(model_uri)[0]
