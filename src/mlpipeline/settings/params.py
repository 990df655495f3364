"""The params.yaml sections as frozen pydantic models: unknown keys rejected, no silent coercion, each key typed
and bounded; :class:`Params` is the whole file (its embedded defaults are the committed params.yaml)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
            from mlpipeline.settings.loading import describe

            raise ConfigError(describe(exc, DEFAULT_PARAMS_FILE, prefix=f"{name}.")) from exc

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
