"""The estimator registry: every model train can fit, its hyperparameters and the types its fitted model holds.

**Adding an estimator is one entry in** :data:`ESTIMATORS` (``mlpipeline new estimator NAME`` writes it): its
hyperparameters (a :class:`Hyperparams` model: the keys it reads from ``train:`` with their types and defaults),
its class for each task (``module:Class``, imported only when train builds it), the keyword arguments it gets, and
the types its fitted model holds that our loader must trust. check-params and train both read this registry, so
a misspelt key or a model name nobody registered fails before any work. Only check-params (which reruns nothing by
itself), train and the stages after it import this module: adding an estimator reruns train onward, never ingest.
The pipeline a model is built into is :mod:`mlpipeline.core.models`.

Example (LightGBM, after `make add PACKAGE=lightgbm`)::

    class LightGBMParams(Hyperparams):
        n_estimators: Annotated[int, Field(ge=1, le=10_000)] = 100
        learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1

    ESTIMATORS["lightgbm"] = Estimator(
        LightGBMParams,
        "lightgbm:LGBMClassifier",
        "lightgbm:LGBMRegressor",
        lambda b: {"n_estimators": b.hyper.n_estimators, "learning_rate": b.hyper.learning_rate,
                   "random_state": b.seed, "n_jobs": 1, "deterministic": True, "verbose": -1},
        trusted=("lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor",
                 "collections.OrderedDict"),
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlpipeline.core import features
from mlpipeline.core.schema import Task
from mlpipeline.errors import ConfigError
from mlpipeline.settings import TrainParams


class Hyperparams(BaseModel):
    """An estimator's hyperparameters: keys of ``train:`` in params.yaml (typed, with defaults)."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


@dataclass(frozen=True)
class Built:
    """What an estimator's ``kwargs`` get: its hyperparameters, the seed, the task and which prepared columns are
    categorical (for an estimator that handles categories natively)."""

    hyper: Any
    seed: int
    task: Task
    categorical: list[bool]


@dataclass(frozen=True)
class Estimator:
    """One model train can build: the class for each task (``module:Class``, imported when train builds it, so
    check-params never needs the library), its hyperparameters, and the keyword arguments it gets."""

    params: type[Hyperparams]
    classifier: str
    regressor: str
    kwargs: Callable[[Built], dict[str, Any]]
    scaled: bool = False  # linear: inputs standardized when train.scale is auto
    native: bool = False  # handles NaN and categories itself (gets ordinal codes and the categorical mask)
    trusted: tuple[str, ...] = ()  # types of its fitted model that skops may load (beyond scikit-learn's own)

    def build(self, built: Built) -> Any:
        import importlib

        module, _, name = (self.classifier if built.task == "classification" else self.regressor).partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot import {module}:{name} for train.model: {exc}. Add its package to the model "
                "environments (`make add PACKAGE=...`, see docs/adapt.md)"
            ) from exc
        return cls(**self.kwargs(built))


MaxDepth = Annotated[int, Field(ge=1)] | None
MaxIter = Annotated[int, Field(ge=1)]


class ForestParams(Hyperparams):
    n_estimators: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_depth: MaxDepth = 5


class LinearParams(Hyperparams):
    C: Annotated[float, Field(gt=0.0)] = 1.0
    max_iter: MaxIter = 500


class BoostingParams(Hyperparams):
    max_iter: MaxIter = 500
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    max_depth: MaxDepth = 5


def _forest(b: Built) -> dict[str, Any]:
    return {"n_estimators": b.hyper.n_estimators, "max_depth": b.hyper.max_depth, "random_state": b.seed, "n_jobs": 1}


def _linear(b: Built) -> dict[str, Any]:
    """Logistic regression for classes; ridge with ``alpha = 1 / C`` for a regression target."""
    strength = {"C": b.hyper.C} if b.task == "classification" else {"alpha": 1.0 / b.hyper.C}
    return {**strength, "max_iter": b.hyper.max_iter, "random_state": b.seed}


def _boosting(b: Built) -> dict[str, Any]:
    return {
        "max_iter": b.hyper.max_iter,
        "learning_rate": b.hyper.learning_rate,
        "max_depth": b.hyper.max_depth,
        "categorical_features": b.categorical if any(b.categorical) else None,
        "random_state": b.seed,
    }


TREES = ("sklearn.tree._tree.Tree",)
FOREST = ("sklearn.ensemble:RandomForestClassifier", "sklearn.ensemble:RandomForestRegressor")
LINEAR = ("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Ridge")
BOOSTING = ("sklearn.ensemble:HistGradientBoostingClassifier", "sklearn.ensemble:HistGradientBoostingRegressor")
ESTIMATORS: dict[str, Estimator] = {
    "random_forest": Estimator(ForestParams, *FOREST, _forest, trusted=TREES),
    "linear": Estimator(LinearParams, *LINEAR, _linear, scaled=True),
    "logistic_regression": Estimator(LinearParams, *LINEAR, _linear, scaled=True),  # the old name of linear
    "hist_gradient_boosting": Estimator(
        BoostingParams,
        *BOOSTING,
        _boosting,
        native=True,
        # Its predictors, and the partial(check_array, ...) it keeps.
        trusted=(
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "functools.partial",
            "sklearn.utils.validation.check_array",
        ),
    ),
}
# Types any of our models may hold that skops does not trust by itself.
BASE_TRUSTED = ("numpy.dtype",)  # the encoders' output dtype


def trusted_types() -> list[str]:
    """Every type the loader lets skops rebuild: fixed here in code, never read from a model file."""
    found = [*BASE_TRUSTED, *(t for e in ESTIMATORS.values() for t in e.trusted), *features.TRUSTED]
    return sorted(set(found))


def hyperparams(params: TrainParams) -> Hyperparams:
    """The chosen estimator's hyperparameters from ``train:``; ConfigError naming a bad key or an unknown model.

    Every key besides the common ones must be a hyperparameter of some registered estimator (so switching
    ``train.model`` is one edit), and is checked with each estimator's types that declare it.
    """
    if params.model not in ESTIMATORS:
        known = ", ".join(sorted(ESTIMATORS))
        raise ConfigError(
            f"params.yaml: 'train.model': {params.model!r} is not a registered estimator ({known}). Add one to "
            "ESTIMATORS in src/mlpipeline/core/estimators.py (`mlpipeline new estimator NAME` writes the entry)"
        )
    extra = dict(params.model_extra or {})
    declared = {key for e in ESTIMATORS.values() for key in e.params.model_fields}
    unknown = sorted(set(extra) - declared)
    if unknown:
        raise ConfigError(
            "params.yaml: " + "; ".join(f"unknown key 'train.{key}'" for key in unknown) + " (hyperparameters of the "
            f"registered estimators: {', '.join(sorted(declared))}). Fix params.yaml (see README 'Parameters')."
        )
    chosen = None
    for name, estimator in ESTIMATORS.items():
        try:
            hyper = estimator.params.model_validate(
                {k: v for k, v in extra.items() if k in estimator.params.model_fields}
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"'train.{'.'.join(map(str, e['loc']))}': {e['msg'].lower()} (got {e['input']!r})" for e in exc.errors()
            )
            raise ConfigError(f"params.yaml: {problems}. Fix params.yaml (see README 'Parameters').") from exc
        if name == params.model:
            chosen = hyper
    for name in params.features:
        if name not in features.TRANSFORMS:
            raise ConfigError(
                f"params.yaml: 'train.features': no feature transform {name!r} (registered: "
                f"{', '.join(sorted(features.TRANSFORMS)) or 'none'}). Add it to src/mlpipeline/core/features.py "
                "(`mlpipeline new transform NAME`)"
            )
    assert chosen is not None
    return chosen


def default_hyperparams() -> dict[str, Any]:
    """Every registered estimator's hyperparameters with their defaults, as params.yaml's ``train:`` holds them."""
    found: dict[str, Any] = {}
    for estimator in ESTIMATORS.values():
        for key, value in estimator.params().model_dump().items():
            found.setdefault(key, value)
    return found


def logged_params(params: TrainParams) -> dict[str, Any]:
    """What MLflow records of the model: the estimator's hyperparameters and the seed."""
    return {**hyperparams(params).model_dump(), "seed": params.seed}
