"""Typed configuration: ``params.yaml`` sections as frozen pydantic models, secrets/endpoints from the environment.

Every section forbids unknown keys, so a misspelt or ill-typed parameter fails before any stage does work. A
stage is handed only its own section (``load_params(path).train``), but the whole file is checked each time, so
a typo anywhere stops the pipeline at the first stage that runs rather than halfway through.

Example:
    >>> params = Params()  # the embedded defaults, identical to the committed params.yaml
    >>> params.train.model
    'random_forest'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlpipeline.errors import ConfigError

DEFAULT_PARAMS_FILE = Path("params.yaml")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]


class Section(BaseModel):
    """Base of every params section: immutable, unknown keys rejected, no silent coercion of strings."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class IngestParams(Section):
    """Where the raw data comes from.

    ``source`` is ``sklearn:<iris|wine|breast_cancer|digits>`` (bundled with scikit-learn, offline) or the path of
    a local ``.csv``/``.parquet`` file whose label column is ``target``. The raw file is written to
    ``data/raw/<name>.csv``.
    """

    source: str = "sklearn:iris"
    name: Name = "iris"
    target: str = "target"


class ValidateParams(Section):
    """The data contract checked against the raw data."""

    contract: str = "contracts/iris.yaml"
    min_rows_per_class: Annotated[int, Field(ge=1)] = 10


class PreprocessParams(Section):
    """Stratified train/test split."""

    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: int = 42


class TrainParams(Section):
    """Model choice and hyperparameters, plus where the run and model are recorded in MLflow.

    ``n_estimators``/``max_depth`` apply to ``random_forest``; ``C``/``max_iter`` to ``logistic_regression``.
    """

    model: Literal["random_forest", "logistic_regression"] = "random_forest"
    seed: int = 42
    n_estimators: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_depth: Annotated[int, Field(ge=1)] | None = 5
    C: Annotated[float, Field(gt=0.0)] = 1.0
    max_iter: Annotated[int, Field(ge=1)] = 500
    experiment: Name = "iris"
    registered_model: Name = "iris-classifier"

    def model_params(self) -> dict[str, Any]:
        """The hyperparameters that apply to the chosen model (what is logged to MLflow)."""
        if self.model == "random_forest":
            return {"n_estimators": self.n_estimators, "max_depth": self.max_depth, "seed": self.seed}
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed}


class EvaluateParams(Section):
    """How the test set is scored."""

    plot_dpi: Annotated[int, Field(ge=30, le=600)] = 100


class PromoteParams(Section):
    """The promotion gate: absolute minimums, and how the candidate is compared with the champion."""

    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9
    min_f1_macro: Annotated[float, Field(ge=0.0, le=1.0)] = 0.85
    compare_metric: Literal["accuracy", "f1_macro", "f1_weighted"] = "f1_macro"
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class Params(Section):
    """The whole params.yaml. Sections may be omitted (their defaults apply); unknown sections are errors."""

    ingest: IngestParams = IngestParams()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    promote: PromoteParams = PromoteParams()

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)


def _describe(error: ValidationError, path: Path) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]).replace("validate_", "validate")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif item["type"] == "literal_error":
            problems.append(f"'{key}': {item['msg'].lower()}, got {item['input']!r}")
        else:
            problems.append(f"'{key}': {item['msg'].lower()} (got {item.get('input')!r})")
    return f"{path}: " + "; ".join(problems) + ". Fix params.yaml (see README 'Parameters')."


def parse_params(data: Any, path: Path = DEFAULT_PARAMS_FILE) -> Params:
    """Validate already-loaded YAML data; raise ConfigError naming every bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (ingest, validate, ...), got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc


def load_params(path: Path = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml; a missing file means the embedded defaults."""
    import yaml

    if not path.exists():
        return Params()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax.") from exc
    return parse_params(data, path)


class EnvSettings(BaseSettings):
    """Endpoints and switches from the environment or a git-ignored ``.env`` (the environment wins).

    Secrets never go in params.yaml; MLflow and S3 clients read their credentials from the same environment.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True)

    mlflow_tracking_uri: str = DEFAULT_TRACKING_URI
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password: SecretStr | None = None
    mlpipeline_runtime: Literal["local", "docker"] = "local"
    # The DVC remote (make setup-remote): an S3 bucket, by default the team stack's MinIO.
    mlpipeline_remote_url: str = "s3://dvc-store"
    mlpipeline_s3_endpoint: str | None = "http://127.0.0.1:9000"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    # DagsHub (make dagshub): your user name, an access token, and the repository as owner/name.
    dagshub_user: str | None = None
    dagshub_token: SecretStr | None = None
    dagshub_repo: str | None = None


def env_settings() -> EnvSettings:
    """Read the environment now (never at import time)."""
    try:
        return EnvSettings()
    except ValidationError as exc:
        raise ConfigError(
            "environment: " + "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        ) from exc
