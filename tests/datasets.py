"""Small data sets for the unit tests, in ingest's layout, with their schemas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from mlpipeline.core.columns import snake_case
from mlpipeline.core.schema import FeatureInfo, Schema

IRIS_LABELS = {0: "setosa", 1: "versicolor", 2: "virginica"}


def iris() -> tuple[pd.DataFrame, Schema]:
    df = load_iris(as_frame=True).frame.rename(columns=snake_case)
    df["target_name"] = df["target"].map(IRIS_LABELS)
    features = {c: FeatureInfo() for c in df.columns if c not in ("target", "target_name")}
    return df, Schema(features=features, labels=IRIS_LABELS)


def mixed(rows: int = 300, seed: int = 0, task: str = "classification") -> tuple[pd.DataFrame, Schema]:
    """A deterministic table with a text category, gaps in a number and a category, and a learnable label."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(10, 3, rows).round(2)
    shape = rng.choice(["round", "square"], rows).astype(object)
    score = size + np.where(colour == "red", 5.0, 0.0) + rng.normal(0, 0.5, rows)
    size_with_gaps = size.copy()
    size_with_gaps[::17] = np.nan
    shape[::23] = None
    df = pd.DataFrame({"colour": colour, "size": size_with_gaps, "shape": shape})
    features = {
        "colour": FeatureInfo(kind="categorical", categories=["blue", "green", "red"]),
        "size": FeatureInfo(nullable=True),
        "shape": FeatureInfo(kind="categorical", categories=["round", "square"], nullable=True),
    }
    if task == "regression":
        df["target"] = score.round(3)
        return df, Schema(task="regression", features=features)
    high = (score > np.median(score)).astype(int)
    df["target"] = high
    df["target_name"] = np.where(high == 1, "high", "low")
    return df, Schema(features=features, labels={0: "low", 1: "high"})


IRIS_FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


def iris_like(rng: np.random.Generator, rows: int, shift: float = 0.0) -> tuple[pd.DataFrame, list[str]]:
    """Fresh rows from Iris's own class-conditional normal distributions (continuous: no ties) and their class
    names; ``shift`` moves every feature by that many of its standard deviations."""
    data = load_iris()
    classes = rng.integers(0, 3, rows)
    out = np.empty((rows, 4))
    for code in range(3):
        members = data.data[data.target == code]
        picked = classes == code
        out[picked] = rng.multivariate_normal(members.mean(0), np.cov(members.T), picked.sum())
    out += shift * data.data.std(0)
    return pd.DataFrame(out, columns=IRIS_FEATURES), [IRIS_LABELS[int(c)] for c in classes]
