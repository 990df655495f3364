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
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlpipeline.core.columns import MISSING_TOKENS
from mlpipeline.errors import ConfigError

DEFAULT_PARAMS_FILE = Path("params.yaml")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# scikit-learn's bundled data sets (offline) and their task.
SKLEARN_DATASETS = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
Task = Literal["classification", "regression"]
# `synthetic:<rows>`: a seeded, generated classification data set of any size (io/sources.py), for scale tests.
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_MAX_ROWS = 100_000_000
# File sources live here: ingest depends on the whole folder in dvc.yaml, so an edited file reruns the pipeline.
SOURCES_DIR = PurePosixPath("data/sources")
SOURCE_SUFFIXES = (".csv", ".parquet", ".pq")

REGRESSION_METRICS = ("rmse", "mae", "r2")
MAX_AUTO_CLASSES = 50

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
SectionT = TypeVar("SectionT", bound=BaseModel)


class Section(BaseModel):
    """Base of every params section: immutable, unknown keys rejected, no silent coercion of strings."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class IngestParams(Section):
    """Where the raw data comes from.

    ``source`` is ``sklearn:<iris|wine|breast_cancer|digits|diabetes>`` (bundled with scikit-learn, offline),
    ``synthetic:<rows>`` (generated, seeded: the same rows every time, of any size) or a ``.csv``/``.parquet``
    file under ``data/sources/`` whose label column is ``target``. The raw file is
    written to ``data/raw/<name>.csv``. ``task`` is ``auto`` (a bundled source knows its task; a file's label
    column is a regression target when it is numeric with non-integer values or more than
    ``MAX_AUTO_CLASSES`` distinct values, else classes), or set explicitly. ``missing`` lists what a file writes
    for a missing value: each of them alone in a field (whitespace around values is trimmed) becomes a gap, so a
    number column with ``NA`` in it is numbers with gaps; rows whose label is missing are dropped, with a count.
    """

    source: str = "sklearn:iris"
    name: Name = "iris"
    target: str = "target"
    task: Literal["auto", "classification", "regression"] = "auto"
    missing: list[str] = Field(default_factory=lambda: list(MISSING_TOKENS))

    @field_validator("missing")
    @classmethod
    def _trimmed(cls, tokens: list[str]) -> list[str]:
        untrimmed = [t for t in tokens if t != t.strip()]
        if untrimmed:
            raise ValueError(f"{untrimmed}: values are trimmed before matching, so write the tokens trimmed")
        return tokens

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source.startswith(SYNTHETIC_PREFIX):
            synthetic_rows(source)
            return source
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


def synthetic_rows(source: str) -> int:
    """The row count of a ``synthetic:<rows>`` source (``synthetic:1_000_000`` reads as well)."""
    text = source.removeprefix(SYNTHETIC_PREFIX)
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if not 1 <= rows <= SYNTHETIC_MAX_ROWS:
        raise ValueError(f"{source!r}: use synthetic:<rows>, a whole number of rows from 1 to {SYNTHETIC_MAX_ROWS:_}")
    return rows


class ValidateParams(Section):
    """The data contract checked against the raw data."""

    contract: str = "contracts/iris.yaml"
    min_rows_per_class: Annotated[int, Field(ge=1)] = 10


class PreprocessParams(Section):
    """The train/test split (stratified for classes) and the format of its files.

    ``format: parquet`` writes ``data/processed/{train,test}.parquet``, typed and compressed (faster to read and
    smaller for large data); ``csv`` (the default) writes text anyone can open. ``max_train_rows`` caps the
    training part at a seeded sample of that many rows (stratified for classes) when the data are larger: the
    test part keeps every held-out row. Training time grows with rows; scores mostly do not past a million.
    """

    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: int = 42
    format: Literal["csv", "parquet"] = "csv"
    max_train_rows: Annotated[int, Field(ge=2)] | None = None


class TrainParams(Section):
    """Model choice and hyperparameters, the features and preprocessing fitted inside the model, and where MLflow
    records it.

    ``model`` names an estimator of the registry (``mlpipeline.core.models.ESTIMATORS``: ``random_forest``,
    ``linear``, ``hist_gradient_boosting``, and any you add); the other keys of the section are the
    hyperparameters of the registered estimators (``n_estimators``, ``max_depth``, ``C``, ...), each checked by
    that registry's types (check-params and train do: this module must not import it, or adding an estimator
    would rerun every stage). ``features`` names feature transforms (``mlpipeline.core.features``) the model
    computes from the raw inputs. The preprocessing keys build the model's preparation (a ColumnTransformer), so
    the registered model takes raw values, strings included. ``experiment`` and ``registered_model`` default to
    names derived from ``ingest.name``, so each data set has its own champion.
    """

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)

    model: Name = "random_forest"
    seed: int = 42
    features: list[Name] = []
    impute_numeric: Literal["median", "mean", "most_frequent"] = "median"
    impute_categorical: Literal["most_frequent", "constant"] = "most_frequent"
    encoding: Literal["onehot", "ordinal"] = "onehot"
    scale: Literal["auto", "standard", "none"] = "auto"
    experiment: Name | None = None
    registered_model: Name | None = None

    def preprocessing(self) -> dict[str, str]:
        """How features are prepared inside the model (logged to MLflow with the hyperparameters)."""
        return {
            "impute_numeric": self.impute_numeric,
            "impute_categorical": self.impute_categorical,
            "encoding": self.encoding,
            "scale": self.scale,
        }


class EvaluateParams(Section):
    """How the test set is scored."""

    plot_dpi: Annotated[int, Field(ge=30, le=600)] = 100


Metric = Literal[
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "precision_weighted",
    "recall_macro",
    "recall_weighted",
    "rmse",
    "mae",
    "r2",
]


class PromoteParams(Section):
    """The promotion gate: bounds on the test metrics, how the candidate must beat the champion, and the
    experiment policy. A different gate is an edit of this section alone.

    ``floors`` and ``ceilings`` bound any test metric evaluate writes (``metrics/metrics.json``): the candidate's
    value must be at least each floor and at most each ceiling; only the metrics of its task apply
    (``accuracy``, ``f1_macro``, ``precision_macro``, ... for classes; ``rmse``, ``mae``, ``r2`` for regression).
    A candidate replaces the champion only if it scores better by more than ``min_improvement`` on
    ``compare_metric``, both scored on the same test set: a tie never promotes. ``auto`` compares ``f1_macro`` for
    classes and ``rmse`` (lower is better) for a regression target. A DVC experiment's candidate gets the
    ``challenger`` alias instead, unless ``from_experiments`` is true. A candidate with a feature that alone
    predicts the label better than ``lone_feature_max`` on held-out rows (balanced accuracy for classes, R² for
    a regression; train measures it) is refused as a likely leak, unless the contract marks that feature
    ``may_predict_alone: true``; 1.0 turns the check off.
    """

    floors: dict[Metric, float] = {"accuracy": 0.9, "f1_macro": 0.85, "r2": 0.3}
    lone_feature_max: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99
    ceilings: dict[Metric, float] = {}
    compare_metric: Literal["auto"] | Metric = "auto"
    min_improvement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    from_experiments: bool = False

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        old = {"min_accuracy": "floors", "min_f1_macro": "floors", "min_r2": "floors", "max_rmse": "ceilings"}
        found = [key for key in old if isinstance(data, dict) and key in data]
        if found:
            key = found[0]
            metric, bound = key.split("_", 1)[1], old[key]
            raise ValueError(f"promote.{key} is now promote.{bound}: {{{metric}: <value>}} (one map for every metric)")
        return data

    @model_validator(mode="after")
    def _possible(self) -> PromoteParams:
        for kind, bounds in (("floors", self.floors), ("ceilings", self.ceilings)):
            for metric, value in bounds.items():
                if metric in REGRESSION_METRICS and metric != "r2" and value < 0:
                    raise ValueError(f"promote.{kind}.{metric}: {metric} is never below 0, got {value}")
                if metric not in REGRESSION_METRICS and not 0.0 <= value <= 1.0:
                    raise ValueError(f"promote.{kind}.{metric}: {metric} is between 0 and 1, got {value}")
        return self

    def metric_for(self, task: Task) -> str:
        """The metric candidate and champion are compared on for ``task``."""
        if self.compare_metric != "auto":
            return self.compare_metric
        return "f1_macro" if task == "classification" else "rmse"

    def bounds(self, task: Task) -> tuple[dict[str, float], dict[str, float]]:
        """The floors and ceilings that apply to ``task``'s metrics."""

        def applies(metric: str) -> bool:
            return (metric in REGRESSION_METRICS) == (task == "regression")

        return (
            {m: v for m, v in self.floors.items() if applies(m)},
            {m: v for m, v in self.ceilings.items() if applies(m)},
        )


class DriftTest(Section):
    """One statistical test per column kind, and the threshold at which a column counts as drifted.

    ``ks`` (two-sample Kolmogorov-Smirnov) and ``chisquare`` (two-sample test of homogeneity) give p-values: a
    column drifts when p < threshold. ``wasserstein`` (the distance in units of the reference's standard
    deviation) and ``psi`` (population stability index) give distances: a column drifts when the distance >=
    threshold (see mlpipeline.monitoring.drift).
    """

    test: str
    threshold: Annotated[float, Field(gt=0.0)]


class NumericDrift(DriftTest):
    test: Literal["ks", "wasserstein"] = "ks"
    threshold: Annotated[float, Field(gt=0.0)] = 0.05


class CategoricalDrift(DriftTest):
    test: Literal["chisquare", "psi"] = "chisquare"
    threshold: Annotated[float, Field(gt=0.0)] = 0.05


class MonitorParams(Section):
    """``mlpipeline monitor``: recent served predictions against the champion's training data.

    The newest ``window`` logged rows the champion answered are compared column by column (each input and the
    model's output) with the reference the champion was trained on. The predictions drift when at least
    ``drift_share`` of the columns drift; with fewer than ``min_rows`` rows there is no verdict. ``retrain`` says
    what a drift verdict starts: nothing, the pipeline here (``dvc repro``, through the gate) or the Airflow DAG.
    """

    window: Annotated[int, Field(ge=1)] = 5000
    min_rows: Annotated[int, Field(ge=1)] = 100
    numeric: NumericDrift = NumericDrift()
    categorical: CategoricalDrift = CategoricalDrift()
    drift_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    retrain: Literal["none", "pipeline", "airflow"] = "none"

    @model_validator(mode="after")
    def _p_values_are_probabilities(self) -> MonitorParams:
        for name, section in (("numeric", self.numeric), ("categorical", self.categorical)):
            if section.test in ("ks", "chisquare") and section.threshold >= 1.0:
                raise ValueError(f"monitor.{name}.threshold: {section.test} compares a p-value: give one below 1")
        return self


class Params(Section):
    """The whole params.yaml. Sections may be omitted (their defaults apply); unknown sections are errors."""

    ingest: IngestParams = IngestParams()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    promote: PromoteParams = PromoteParams()
    monitor: MonitorParams = MonitorParams()

    # Sections of your own stages are allowed too (parse_params checks each names a stage of dvc.yaml); their
    # keys are checked by the model the stage's module declares (:meth:`section`).
    model_config = ConfigDict(frozen=True, extra="allow", strict=True, populate_by_name=True)

    def section(self, name: str, model: type[SectionT]) -> SectionT:
        """The section ``name`` of a stage of your own, checked by ``model`` (the ``PARAMS`` of its module):
        unknown keys and wrong types are a ConfigError naming them."""
        raw = (self.model_extra or {}).get(name)
        try:
            return model.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, DEFAULT_PARAMS_FILE, prefix=f"{name}.")) from exc

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        task = self.ingest.task
        known = SKLEARN_DATASETS.get(self.ingest.source.removeprefix("sklearn:"))
        if self.ingest.source.startswith("sklearn:") and task not in ("auto", known):
            raise ValueError(f"ingest.task: {self.ingest.source} is a {known} data set, not {task}")
        if self.ingest.source.startswith(SYNTHETIC_PREFIX) and task == "regression":
            raise ValueError(f"ingest.task: {self.ingest.source} is a classification data set, not regression")
        metric = self.promote.compare_metric
        if task != "auto" and metric != "auto" and (metric in REGRESSION_METRICS) != (task == "regression"):
            raise ValueError(f"promote.compare_metric: {metric!r} does not apply to a {task} task")
        return self

    def task_hint(self, contract_task: str | None = None) -> Task:
        """The task as far as params (and the contract's ``task``, if given) tell, without reading data."""
        if self.ingest.task != "auto":
            return self.ingest.task
        known = SKLEARN_DATASETS.get(self.ingest.source.removeprefix("sklearn:"))
        if self.ingest.source.startswith("sklearn:") and known:
            return "regression" if known == "regression" else "classification"
        if self.ingest.source.startswith(SYNTHETIC_PREFIX):
            return "classification"
        return "regression" if contract_task == "regression" else "classification"

    def experiment_name(self) -> str:
        """``train.experiment``, by default ``ingest.name``."""
        return self.train.experiment or self.ingest.name

    def model_name(self, task: Task) -> str:
        """``train.registered_model``, by default ``<ingest.name>-classifier`` or ``<ingest.name>-regressor``:
        one registered model (and champion) per data set."""
        if self.train.registered_model:
            return self.train.registered_model
        return f"{self.ingest.name}-{'regressor' if task == 'regression' else 'classifier'}"


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """`` (did you mean 'test_size'?)`` for a misspelt key of a params section, or nothing."""
    import difflib

    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    names = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(error: ValidationError, path: Path, prefix: str = "") -> str:
    problems = []
    for item in error.errors():
        key = prefix + ".".join(str(part) for part in item["loc"]).replace("validate_", "validate")
        key = key.replace(".[key]", "")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'{_did_you_mean(item['loc'])}")
        elif item["type"] == "literal_error":
            problems.append(f"'{key}': {item['msg'].lower()}, got {item['input']!r}")
        elif item["type"] == "value_error" and not key:  # a rule across sections: its message names the keys
            problems.append(str(item["ctx"]["error"]))
        elif item["type"] == "value_error":
            problems.append(f"'{key}' {item['input']!r}: {item['ctx']['error']!s}")
        else:
            problems.append(f"'{key}': {item['msg'].lower()} (got {item.get('input')!r})")
    return f"{path}: " + "; ".join(problems) + ". Fix params.yaml (see README 'Parameters')."


def parse_params(data: Any, path: Path = DEFAULT_PARAMS_FILE, sections: Collection[str] = ()) -> Params:
    """Validate already-loaded YAML data; raise ConfigError naming every bad key. ``sections``: the names of
    your own stages (dvc.yaml's), whose sections may be there too."""
    if data is None:
        raise ConfigError(f"{path} is empty: it must hold the sections ingest, validate, preprocess, train, ...")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (ingest, validate, ...), got {type(data).__name__}")
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    extra = params.model_extra or {}
    unknown = [name for name in extra if name not in sections]
    if unknown:
        raise ConfigError(
            f"{path}: "
            + "; ".join(f"unknown key '{name}'" for name in unknown)
            + f" (the sections are {', '.join(f.alias or n for n, f in Params.model_fields.items())}, and one per "
            "stage of your own in dvc.yaml). Fix params.yaml (see README 'Parameters')."
        )
    bad = [name for name, value in extra.items() if value is not None and not isinstance(value, dict)]
    if bad:
        raise ConfigError(f"{path}: section {bad[0]!r} must be a mapping of keys. Fix params.yaml")
    return params


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


def stage_names(dvc_yaml: Path) -> list[str]:
    """The stage names of a dvc.yaml (none when there is no readable one): the sections of your own stages."""
    import yaml

    try:
        data = yaml.load(dvc_yaml.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return []
    stages = data.get("stages") if isinstance(data, dict) else None
    return [str(name) for name in stages] if isinstance(stages, dict) else []


def load_params(path: Path = DEFAULT_PARAMS_FILE, dvc_yaml: Path | None = None) -> Params:
    """Read and validate a params file; a missing or empty one is an error, never the defaults in disguise.

    A section named after a stage of ``dvc_yaml`` (by default the one beside the file) is a stage of your own's
    (its keys are checked by that stage, and by check-params)."""
    text = read_config_text(path, "params", "run from the project root, or pass --params")
    return parse_params(load_yaml(text, path), path, stage_names(dvc_yaml or path.parent / "dvc.yaml"))


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
    # A request's headers must arrive within this of its connection (or first byte), its body within the next:
    # slow clients are disconnected. Beyond max_connections open at once, new requests get a 503.
    serve_header_timeout: float = Field(default=10.0, gt=0.0, validation_alias="MLPIPELINE_SERVE_HEADER_TIMEOUT")
    serve_body_timeout: float = Field(default=30.0, gt=0.0, validation_alias="MLPIPELINE_SERVE_BODY_TIMEOUT")
    serve_max_connections: int = Field(default=1000, ge=1, validation_alias="MLPIPELINE_SERVE_MAX_CONNECTIONS")
    serve_token: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_SERVE_TOKEN")
    # A/B and shadow serving (serving/routing.py): off (champion only), ab (a share of requests answered by the
    # challenger alias, sticky by a request key header) or shadow (the champion answers, the challenger scores a
    # share of requests off the request path); changeable while serving with POST /ab.
    serve_ab_mode: Literal["off", "ab", "shadow"] = Field(default="off", validation_alias="MLPIPELINE_SERVE_AB_MODE")
    serve_ab_share: float = Field(default=0.1, ge=0.0, le=1.0, validation_alias="MLPIPELINE_SERVE_AB_SHARE")
    serve_ab_alias: Name = Field(default="challenger", validation_alias="MLPIPELINE_SERVE_AB_ALIAS")
    serve_ab_key_header: str = Field(
        default="X-Request-Key", pattern=r"^[A-Za-z0-9-]+$", validation_alias="MLPIPELINE_SERVE_AB_KEY_HEADER"
    )
    serve_ab_salt: str = Field(default="", max_length=64, validation_alias="MLPIPELINE_SERVE_AB_SALT")
    serve_ab_shadow_queue: int = Field(default=1000, ge=1, validation_alias="MLPIPELINE_SERVE_AB_SHADOW_QUEUE")
    # Answers kept in memory (rows) so that POST /feedback can check request ids and score the versions.
    serve_feedback_window: int = Field(default=100_000, ge=1, validation_alias="MLPIPELINE_SERVE_FEEDBACK_WINDOW")
    # The prediction log (monitoring/predictions.py): a folder of JSON Lines files ("off": no log), the share of
    # requests kept, the in-memory queue (full: records are dropped and counted), file size and how many files.
    prediction_log_dir: str = Field(default="logs/predictions", validation_alias="MLPIPELINE_PREDICTION_LOG_DIR")
    prediction_log_sample: float = Field(
        default=1.0, ge=0.0, le=1.0, validation_alias="MLPIPELINE_PREDICTION_LOG_SAMPLE"
    )
    prediction_log_queue: int = Field(default=100_000, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_QUEUE")
    prediction_log_file_mb: int = Field(default=64, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_FILE_MB")
    prediction_log_keep_files: int = Field(default=16, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_KEEP_FILES")
    # The team stack: PostgreSQL instead of files (postgresql://user:password@host:port/db), rows kept this many days.
    prediction_log_url: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_PREDICTION_LOG_URL")
    prediction_log_keep_days: int = Field(default=30, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_KEEP_DAYS")
    # The drift summary `mlpipeline monitor` writes (--out), which the server shows in /metrics.
    drift_summary: str = Field(default="reports/drift/summary.json", validation_alias="MLPIPELINE_DRIFT_SUMMARY")
    # `mlpipeline monitor` with monitor.retrain: airflow triggers the DAG through Airflow's REST API here.
    airflow_url: str | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_URL")
    airflow_username: str | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_USERNAME")
    airflow_password: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_PASSWORD")
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
