"""Feature transforms: columns computed from the raw inputs as the first step of the model itself.

Because the transform is part of the registered model, the served model takes the raw inputs and computes the
feature the same way at training and serving time (no train/serve skew, no new column for clients to send), and a
model with a new feature still takes the champion's inputs, so it can replace the champion when the gate says it
is better.

**Adding one is one entry in** :data:`TRANSFORMS` (``mlpipeline new transform NAME`` writes it), then naming it in
``train.features``::

    TRANSFORMS["petal_area"] = Transform(
        compute=lambda rows: rows["petal_length_cm"] * rows["petal_width_cm"],
        needs=("petal_length_cm", "petal_width_cm"),
    )

``compute`` gets the input rows (a DataFrame: numbers as floats with NaN for a gap, categories as text) and
returns the new column; it may use features listed before it in ``train.features``. A categorical feature
declares its categories. The model file refers to :func:`add_features` by name, never to your code's bytes, so
loading a model never runs code from the file: it runs this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlpipeline.core.schema import FeatureInfo, Schema
from mlpipeline.errors import DataContractError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Transform:
    """One feature: how to compute it from the input rows, which inputs it needs, its kind."""

    compute: Callable[[pd.DataFrame], Any]
    needs: tuple[str, ...]
    kind: Literal["numeric", "categorical"] = "numeric"
    categories: tuple[str, ...] = ()  # a categorical feature's values (others are encoded as unknown)


TRANSFORMS: dict[str, Transform] = {}


def add_features(rows: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``rows`` with the features ``names`` appended, in order, each a column named after its transform."""
    out = rows.copy()
    for name in names:
        transform = TRANSFORMS[name]
        value = transform.compute(out)
        out[name] = value.astype("float64") if transform.kind == "numeric" else value.astype(object)
    return out


# What the model's first step holds: skops must be allowed to rebuild it.
TRUSTED = (f"{add_features.__module__}.{add_features.__name__}",)


def with_features(schema: Schema, names: Sequence[str]) -> Schema:
    """The columns the model's preparation takes: the inputs, then the features ``names``. DataContractError when
    a feature needs an input the data does not have."""
    features = dict(schema.features)
    for name in names:
        transform = TRANSFORMS[name]
        missing = [column for column in transform.needs if column not in features]
        if missing:
            raise DataContractError(
                f"feature {name!r} needs {missing}, which the data does not have (its columns: "
                f"{', '.join(schema.features)}): fix its `needs` in src/mlpipeline/core/features.py or "
                "drop it from train.features"
            )
        if name in features:
            raise DataContractError(f"feature {name!r} has the name of an input column: rename it")
        categories = list(transform.categories) if transform.kind == "categorical" else None
        features[name] = FeatureInfo(kind=transform.kind, categories=categories, nullable=True)
    return schema.model_copy(update={"features": features})
