"""Typed configuration: ``params.yaml`` sections as frozen pydantic models, secrets/endpoints from the environment.

Every section forbids unknown keys, so a misspelt or ill-typed parameter fails before any stage does work. A
stage is handed only its own section (``load_params(path).train``), but the whole file is checked each time, so
a typo anywhere stops the pipeline at the first stage that runs rather than halfway through. The file itself is
read strictly: a missing or empty file, a duplicate key or a YAML syntax error is an error naming the line and
column, never a silent fallback to defaults.

The environment (and the project's git-ignored ``.env``) is read by one model, :class:`EnvSettings`, everywhere.

Example:
    >>> params = Params()  # the embedded defaults, identical to the committed params.yaml
    >>> params.train.model
    'random_forest'
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlpipeline.errors import ConfigError

DEFAULT_PARAMS_FILE = Path("params.yaml")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits")
# File sources live here: ingest depends on the whole folder in dvc.yaml, so an edited file reruns the pipeline.
SOURCES_DIR = PurePosixPath("data/sources")
SOURCE_SUFFIXES = (".csv", ".parquet", ".pq")

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]


class Section(BaseModel):
    """Base of every params section: immutable, unknown keys rejected, no silent coercion of strings."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class IngestParams(Section):
    """Where the raw data comes from.

    ``source`` is ``sklearn:<iris|wine|breast_cancer|digits>`` (bundled with scikit-learn, offline) or a
    ``.csv``/``.parquet`` file under ``data/sources/`` whose label column is ``target``. The raw file is written
    to ``data/raw/<name>.csv``.
    """

    source: str = "sklearn:iris"
    name: Name = "iris"
    target: str = "target"

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source.startswith("sklearn:"):
            if source.removeprefix("sklearn:") not in SKLEARN_DATASETS:
                raise ValueError(f"bundled sources are sklearn:<{'|'.join(SKLEARN_DATASETS)}>")
            return source
        path = PurePosixPath(source)
        inside = not path.is_absolute() and ".." not in path.parts and path.parts[:2] == SOURCES_DIR.parts
        if not inside or path.suffix.lower() not in SOURCE_SUFFIXES or len(path.parts) < 3:
            raise ValueError(
                f"use sklearn:<{'|'.join(SKLEARN_DATASETS)}> or a .csv/.parquet file under {SOURCES_DIR}/ "
                f"(e.g. {SOURCES_DIR}/my-data.csv): DVC tracks that folder as ingest's input, so an edited file "
                "reruns the pipeline"
            )
        return source


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
    """The promotion gate: absolute minimums, how the candidate must beat the champion, and the experiment policy.

    A candidate replaces the champion only if it scores higher by more than ``min_improvement`` on
    ``compare_metric``, both scored on the same test set: a tie never promotes. A DVC experiment's candidate
    gets the ``challenger`` alias instead, unless ``from_experiments`` is true.
    """

    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9
    min_f1_macro: Annotated[float, Field(ge=0.0, le=1.0)] = 0.85
    compare_metric: Literal["accuracy", "f1_macro", "f1_weighted"] = "f1_macro"
    min_improvement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    from_experiments: bool = False


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
        elif item["type"] == "value_error":
            problems.append(f"'{key}' {item['input']!r}: {item['ctx']['error']!s}")
        else:
            problems.append(f"'{key}': {item['msg'].lower()} (got {item.get('input')!r})")
    return f"{path}: " + "; ".join(problems) + ". Fix params.yaml (see README 'Parameters')."


def parse_params(data: Any, path: Path = DEFAULT_PARAMS_FILE) -> Params:
    """Validate already-loaded YAML data; raise ConfigError naming every bad key."""
    if data is None:
        raise ConfigError(f"{path} is empty: it must hold the sections ingest, validate, preprocess, train, ...")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (ingest, validate, ...), got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc


def load_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML strictly: a duplicate key or a syntax error is a ConfigError naming ``path:line:column``."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        loader.flatten_mapping(node)
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key, e.g. a list; the base constructor names it
                break
            if seen is not None:
                raise ConfigError(
                    f"{path}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r} (first on line {seen}); "
                    "keep one of them"
                )
            first[key] = mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: YAML syntax error: {problem}. Fix the syntax") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax") from exc


def read_config_text(path: Path, what: str, fix: str) -> str:
    """The text of a configuration file; ConfigError naming it (and ``fix``) when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file {path} not found: {fix}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc}") from exc


def load_params(path: Path = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate a params file; a missing or empty one is an error, never the defaults in disguise."""
    text = read_config_text(path, "params", "run from the project root, or pass --params")
    return parse_params(load_yaml(text, path), path)


def missing_interpolated_keys(params_text: str, dvc_yaml_text: str) -> list[str]:
    """Keys dvc.yaml interpolates (``${ingest.name}``) that the params file does not set itself.

    DVC reads them from the file, not from our defaults, so they must be spelled out there.
    """
    data = load_yaml(params_text, DEFAULT_PARAMS_FILE) or {}
    missing = []
    for key in sorted(set(re.findall(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}", dvc_yaml_text))):
        node: Any = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(key)
    return missing


def project_root() -> Path:
    """The project directory: DVC's repo root while DVC runs a stage (also in an experiment's temp copy under
    ``.dvc/tmp/exps``, whose results belong to the project), else the current directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


class EnvSettings(BaseSettings):
    """Endpoints, switches and secrets from the environment or the project's git-ignored ``.env`` (the
    environment wins). This is the only place either is read.

    Secrets never go in params.yaml; MLflow and S3 clients read their credentials from the same environment.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True, populate_by_name=True)

    mlflow_tracking_uri: str = DEFAULT_TRACKING_URI
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password: SecretStr | None = None
    # Where stages run, and the network their containers join (none on the embedded defaults).
    mlpipeline_runtime: Literal["local", "docker"] = "local"
    mlpipeline_docker_network: str = "none"
    mlpipeline_debug: bool = False
    # How long a subprocess (dvc push/pull, a reproduction's dvc repro) may take before it is stopped.
    mlpipeline_subprocess_timeout: float = Field(default=3600.0, gt=0)
    # The DVC remote (make setup-remote): an S3 bucket, by default the team stack's MinIO.
    mlpipeline_remote_url: str = "s3://dvc-store"
    mlpipeline_s3_endpoint: str | None = "http://127.0.0.1:9000"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    # DagsHub (make dagshub): your user name, an access token, and the repository as owner/name.
    dagshub_user: str | None = None
    dagshub_token: SecretStr | None = None
    dagshub_repo: str | None = None
    # Serving (mlpipeline serve): limits, polling of the champion alias, an optional bearer token.
    serve_max_batch: int = Field(default=1000, ge=1, le=100_000, validation_alias="MLPIPELINE_SERVE_MAX_BATCH")
    serve_max_body_bytes: int = Field(default=1 << 20, ge=1024, validation_alias="MLPIPELINE_SERVE_MAX_BODY_BYTES")
    serve_poll_seconds: float = Field(default=10.0, ge=0.0, validation_alias="MLPIPELINE_SERVE_POLL_SECONDS")
    serve_token: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_SERVE_TOKEN")
    # Set by DVC and by the docker launcher for the stage they run; not yours to set.
    dvc_root: str | None = None
    dvc_exp_name: str | None = None
    dvc_exp_baseline_rev: str | None = None
    mlpipeline_in_container: bool = False
    # Fault injection for the crash tests: the process group is killed at the named checkpoint.
    mlpipeline_crash_at: str | None = None

    @property
    def in_experiment(self) -> bool:
        """True while DVC runs the stage for ``dvc exp run`` (workspace, --temp or a queue worker)."""
        return bool(self.dvc_exp_name)


def _env_error(exc: ValidationError) -> ConfigError:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        field = EnvSettings.model_fields.get(name)
        alias = field.validation_alias if field is not None else None
        shown = alias if isinstance(alias, str) else name
        problems.append(f"{shown.upper()}: {error['msg']}")
    return ConfigError("environment: " + "; ".join(problems) + " (environment or .env, see .env.example)")


def env_settings() -> EnvSettings:
    """Read the environment and the project's ``.env`` now (never at import time)."""
    try:
        return EnvSettings(_env_file=project_root() / ".env")
    except ValidationError as exc:
        raise _env_error(exc) from exc
