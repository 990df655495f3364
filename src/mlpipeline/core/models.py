"""The model train fits: one scikit-learn pipeline of feature transforms, preparation and estimator.

A model is a pipeline: the feature transforms of ``train.features`` (:mod:`mlpipeline.core.features`), the
preparation (a ``ColumnTransformer``), then the estimator of ``train.model`` (:mod:`mlpipeline.core.estimators`).
All of it is part of the registered model, so the model takes raw values (numbers with gaps, categories as text)
and computes its own features: what is served is what was trained. Numeric columns are imputed
(``train.impute_numeric``) and, for linear models, standardized (``train.scale``); categorical columns are
imputed and one-hot or ordinal encoded (``train.encoding``); a category never seen in training is all zeros in
one-hot encoding, ``-1`` in ordinal encoding. An estimator that handles missing values and categories natively
gets ordinal codes and knows which columns are categorical.
"""

from __future__ import annotations

from typing import Any

from mlpipeline.core import features
from mlpipeline.core.estimators import ESTIMATORS, Built, hyperparams
from mlpipeline.core.schema import Schema
from mlpipeline.settings import TrainParams


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
    """An unfitted pipeline (feature transforms, preparation, estimator) for ``params`` and the data's schema.

    The schema is the raw inputs'; the preparation also takes the columns the transforms add.
    """
    from sklearn.pipeline import Pipeline

    estimator = ESTIMATORS[params.model]
    hyper = hyperparams(params)
    prepared = features.with_features(schema, params.features)
    scale = params.scale == "standard" or (params.scale == "auto" and estimator.scaled)
    prepare = _preparation(params, prepared, scale, estimator.native)
    categorical = [True] * len(prepared.categorical) + [False] * len(prepared.numeric)
    model = estimator.build(Built(hyper, params.seed, schema.task, categorical if estimator.native else []))
    steps: list[tuple[str, Any]] = [("prepare", prepare), ("model", model)]
    if params.features:
        steps.insert(0, ("features", feature_step(params.features)))
    return Pipeline(steps)


def feature_step(names: list[str]) -> Any:
    """The model's first step: adds the features ``names`` to the rows it is given."""
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(features.add_features, kw_args={"names": list(names)}, validate=False)
