"""Lone predictors: a leak scores near 1.0 alone on held-out rows; honest features, ids and noise do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from mlpipeline.core.leakage import lone_scores


def test_a_copy_of_the_label_scores_1_and_honest_features_do_not() -> None:
    iris = load_iris(as_frame=True)
    X = iris.data.copy()
    X["code"] = iris.target.astype(float)  # the label, as a number
    X["name"] = iris.target.map({0: "a", 1: "b", 2: "c"}).astype("str")  # the label, as a category
    X["row_id"] = [f"r{i}" for i in range(len(X))]  # unique per row: unseen in the other folds
    scores = lone_scores(X, iris.target.to_numpy(), True, ["name", "row_id"], seed=1)
    assert scores["code"] == scores["name"] == 1.0
    assert max(v for k, v in scores.items() if k not in ("code", "name")) < 0.99  # petal width: about 0.96
    assert scores["row_id"] <= 0.4
    assert list(scores) == sorted(scores, key=lambda k: -scores[k])


def test_a_regression_target_in_disguise_and_gaps() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    X = pd.DataFrame({"cm": y * 2.54, "noise": rng.normal(size=400)})
    X.loc[::7, "cm"] = np.nan  # gaps: a value of their own, not an error
    scores = lone_scores(X, y, False, [], seed=0)
    assert scores["cm"] > 0.8  # a seventh of its rows gaps, predicted as their own value
    assert scores["noise"] < 0.1


def test_too_few_rows_to_tell_score_nothing() -> None:
    """Twenty rows split cleanly by one feature look perfect by chance: no verdict, not a refusal."""
    clean = pd.DataFrame({"a": [float(i) for i in range(20)]})
    assert lone_scores(clean, np.array([0] * 10 + [1] * 10), True, [], seed=0) == {}
