"""Lone predictors: a feature that by itself predicts the label almost perfectly on rows it was not fitted on.

That is how a leak looks (a row id in a file sorted by the label, a column written after the fact, the label in
disguise): the model scores near 1.0 and learns nothing it can use. Train scores every feature alone, out of
fold, on a sample of the training rows, and records the scores on the model version; the gate refuses a version
with a feature above ``promote.lone_feature_max`` unless the contract marks it ``may_predict_alone: true``.

A numeric feature is scored by a small decision tree (gaps are a value of their own), a categorical one by the
majority label (or mean target) of each category, fitted on the other folds: an id-like category, unseen in the
other folds, predicts nothing. Classes are scored by balanced accuracy (a constant guess gets 1/k whatever the
class balance), a regression target by R².
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SAMPLE_ROWS = 20_000  # enough to tell 0.99 from 0.95, in well under a second a feature
MIN_ROWS = 50  # fewer rows: any clean split looks perfect by chance, so nothing is scored
FOLDS = 3


def lone_scores(X: pd.DataFrame, y: Any, classes: bool, categorical: list[str], seed: int) -> dict[str, float]:
    """Each column of ``X`` alone: its out-of-fold score predicting ``y``, highest first."""
    import numpy as np
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(seed)
    target = np.asarray(y)
    rows = rng.permutation(len(X))[:SAMPLE_ROWS]
    if len(rows) < MIN_ROWS:
        return {}
    sample, target = X.iloc[rows].reset_index(drop=True), target[rows]
    folds = list(KFold(FOLDS, shuffle=True, random_state=seed).split(sample))
    scores = {}
    for name in sample.columns:
        column = sample[name]
        predict = _by_category if name in categorical else _by_tree
        predicted = np.empty(len(target), dtype=target.dtype if classes else float)
        for fit_rows, held_out in folds:
            predicted[held_out] = predict(column, target, fit_rows, held_out, classes, seed)
        scores[str(name)] = _score(target, predicted, classes)
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def _by_tree(column: pd.Series, target: np.ndarray, fit: np.ndarray, held_out: np.ndarray, classes: bool,
             seed: int) -> np.ndarray:  # fmt: skip
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    values = np.asarray(column, dtype=float).reshape(-1, 1)
    kind = DecisionTreeClassifier if classes else DecisionTreeRegressor
    tree = kind(max_leaf_nodes=32, min_samples_leaf=2, random_state=seed)
    tree.fit(values[fit], target[fit])
    predicted: np.ndarray = tree.predict(values[held_out])
    return predicted


def _by_category(column: pd.Series, target: np.ndarray, fit: np.ndarray, held_out: np.ndarray, classes: bool,
                 seed: int) -> np.ndarray:  # fmt: skip
    import pandas as pd

    keys = column.astype("object").where(column.notna(), "\0gap")
    seen = pd.DataFrame({"key": keys.iloc[fit].to_numpy(), "y": target[fit]})
    if classes:  # each category's most frequent label, counted in one pass
        counted = seen.value_counts().reset_index().drop_duplicates("key")
        table = counted.set_index("key")["y"]
        fallback = seen["y"].value_counts().index[0]
    else:
        table, fallback = seen.groupby("key")["y"].mean(), seen["y"].mean()
    predicted: np.ndarray = keys.iloc[held_out].map(table).fillna(fallback).to_numpy(dtype=target.dtype)
    return predicted


def _score(target: np.ndarray, predicted: np.ndarray, classes: bool) -> float:
    from sklearn.metrics import balanced_accuracy_score, r2_score

    if classes:
        return round(float(balanced_accuracy_score(target, predicted)), 4)
    return round(float(r2_score(target, predicted)), 4) if target.std() > 0 else 0.0
