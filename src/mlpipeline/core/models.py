"""The model train fits: one scikit-learn pipeline, the feature preparation first, then the estimator.

The preparation (a ``ColumnTransformer``) is part of the model, so the registered model takes raw values:
numbers with gaps, and categories as text. Numeric columns are imputed (``train.impute_numeric``) and, for
linear models, standardized (``train.scale``); categorical columns are imputed and one-hot or ordinal encoded
(``train.encoding``); a category never seen in training is all zeros in one-hot encoding, ``-1`` in ordinal
encoding (the server refuses values outside the contract's categories before that). ``hist_gradient_boosting``
handles missing values and categories natively: it gets ordinal codes and knows which columns are categorical.

Adding a model: a name and its hyperparameter keys in ``settings.MODEL_PARAMS`` (and ``ModelName``), and one
entry in :data:`ESTIMATORS` building it for each task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlpipeline.core.schema import Schema, Task
from mlpipeline.settings import TrainParams


def _forest(params: TrainParams, task: Task) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return forest(n_estimators=params.n_estimators, max_depth=params.max_depth, random_state=params.seed, n_jobs=1)


def _linear(params: TrainParams, task: Task) -> Any:
    if task == "classification":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0 / params.C, max_iter=params.max_iter, random_state=params.seed)


def _boosting(params: TrainParams, task: Task, categorical: list[bool]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    boosting = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return boosting(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        categorical_features=categorical if any(categorical) else None,
        random_state=params.seed,
    )


# name -> (builds the estimator for a task, its inputs are scaled when train.scale is auto, native NaN/categories)
ESTIMATORS: dict[str, tuple[Callable[..., Any], bool, bool]] = {
    "random_forest": (_forest, False, False),
    "linear": (_linear, True, False),
    "logistic_regression": (_linear, True, False),
    "hist_gradient_boosting": (_boosting, False, True),
}


def _preparation(params: TrainParams, schema: Schema, scale: bool, native: bool) -> Any:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric, categorical = schema.numeric, schema.categorical
    parts: list[tuple[str, Any, list[str]]] = []
    if native:  # the estimator handles NaN and categories itself: categories become codes, numbers pass through
        if categorical:
            ordinal = OrdinalEncoder(
                categories=[schema.features[c].categories or "auto" for c in categorical],
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
            )
            parts.append(("categorical", ordinal, categorical))
        if numeric:
            parts.append(("numeric", "passthrough", numeric))
    else:
        if numeric:
            steps: list[Any] = [SimpleImputer(strategy=params.impute_numeric)]
            if scale:
                steps.append(StandardScaler())
            parts.append(("numeric", make_pipeline(*steps), numeric))
        if categorical:
            impute = SimpleImputer(strategy=params.impute_categorical, fill_value="missing")
            categories = [[*(schema.features[c].categories or []), "missing"] for c in categorical]
            if params.encoding == "onehot":
                encode: Any = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)
            else:
                encode = OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value", unknown_value=-1)
            parts.append(("categorical", make_pipeline(impute, encode), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_model(params: TrainParams, schema: Schema) -> Any:
    """An unfitted pipeline (preparation + estimator) for ``params.model`` and the data's schema, seeded."""
    from sklearn.pipeline import Pipeline

    build, scaled, native = ESTIMATORS[params.model]
    scale = params.scale == "standard" or (params.scale == "auto" and scaled)
    prepare = _preparation(params, schema, scale, native)
    if native:
        estimator = build(params, schema.task, [True] * len(schema.categorical) + [False] * len(schema.numeric))
    else:
        estimator = build(params, schema.task)
    return Pipeline([("prepare", prepare), ("model", estimator)])
