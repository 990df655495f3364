"""A random forest compiled to flat arrays, predicting a batch with a few vectorized steps.

scikit-learn's ``predict_proba`` walks the trees one by one through joblib, which costs milliseconds even for
one row; serving needs microseconds. This evaluates the *same* fitted trees: inputs are cast to float32 and
compared ``<=`` with the float64 thresholds exactly as scikit-learn does, and tree probabilities are summed in
tree order before dividing by the number of trees, as scikit-learn does, so labels are identical and
probabilities agree to floating-point rounding (the serving tests check both on every test row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


class CompiledForest:
    """Predict like a fitted ``RandomForestClassifier``, faster on small batches."""

    takes_array = True

    def __init__(self, forest: Any) -> None:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        offsets = np.cumsum([0] + [t.node_count for t in trees[:-1]])
        left, right, feature, threshold, values = [], [], [], [], []
        for offset, tree in zip(offsets, trees, strict=True):
            nodes = np.arange(tree.node_count)
            leaf = tree.children_left == -1
            # A leaf points to itself, so walking a fixed number of steps from the root stays on it.
            left.append(np.where(leaf, nodes, tree.children_left) + offset)
            right.append(np.where(leaf, nodes, tree.children_right) + offset)
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            value = tree.value[:, 0, :].astype(np.float64)
            normalizer = value.sum(axis=1, keepdims=True)
            normalizer[normalizer == 0.0] = 1.0
            values.append(value / normalizer)
        self.roots = offsets.astype(np.intp)
        # children[2 * node] is the left child, children[2 * node + 1] the right one: one gather per level.
        self.children = np.stack([np.concatenate(left), np.concatenate(right)], axis=1).ravel().astype(np.intp)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold)
        self.values = np.concatenate(values)
        self.depth = max(int(t.max_depth) for t in trees)
        self.classes_ = np.asarray(forest.classes_)
        self.n_trees = len(trees)

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities, rows x classes (classes in ``classes_`` order)."""
        data = np.asarray(X, dtype=np.float32)
        rows = np.arange(data.shape[0])[None, :]
        node = np.repeat(self.roots[:, None], data.shape[0], axis=1)  # trees x rows
        for _ in range(self.depth):
            go_right = data[rows, self.feature[node]] > self.threshold[node]
            node = self.children[2 * node + go_right]
        # Trees are the outer axis, so the sum adds them one after another, in scikit-learn's order (a reduction
        # along a contiguous axis would pair them up and round differently).
        total = self.values[node].sum(axis=0)
        return np.asarray(total / self.n_trees, dtype=np.float64)

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """Class labels (the first most probable class, as scikit-learn breaks ties)."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class NumericPipeline:
    """Our model pipeline when every input is numeric: the imputer and scaler as two array operations (the same
    arithmetic as scikit-learn's), then the compiled forest. Takes a float array in feature order, NaN missing."""

    takes_array = True

    def __init__(self, fill: npt.NDArray[np.float64], mean: Any, scale: Any, model: Any) -> None:
        self.fill, self.mean, self.scale, self.model = fill, mean, scale, model
        self.classes_ = model.classes_

    def _prepare(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        data = np.array(X, dtype=np.float64)
        gaps = np.isnan(data)
        if gaps.any():
            data[gaps] = np.broadcast_to(self.fill, data.shape)[gaps]
        if self.mean is not None:
            data = (data - self.mean) / self.scale
        return data

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(self.model.predict_proba(self._prepare(X)))

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        return np.asarray(self.model.predict(self._prepare(X)))


def _numeric_preparation(prepare: Any, n_features: int) -> tuple[Any, Any, Any] | None:
    """(fill values, mean, scale) of a ColumnTransformer that only imputes (and scales) every column, in order."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    fitted = [t for t in getattr(prepare, "transformers_", []) if t[0] != "remainder"]
    if len(fitted) != 1 or fitted[0][0] != "numeric" or len(fitted[0][2]) != n_features:
        return None
    steps = [step for _, step in getattr(fitted[0][1], "steps", [])]
    if not steps or not isinstance(steps[0], SimpleImputer) or len(steps) > 2:
        return None
    if len(steps) == 2 and not isinstance(steps[1], StandardScaler):
        return None
    statistics = np.asarray(steps[0].statistics_, dtype=np.float64)
    if statistics.shape != (n_features,) or np.isnan(statistics).any() or steps[0].add_indicator:
        return None
    scaler = steps[1] if len(steps) == 2 else None
    mean = None if scaler is None else (scaler.mean_ if scaler.with_mean else np.zeros(n_features))
    scale = None if scaler is None else (scaler.scale_ if scaler.with_std else np.ones(n_features))
    return steps[0].statistics_.astype(np.float64), mean, scale


def fast_predictor(model: Any, n_features: int | None = None) -> Any:
    """A compiled forest for a ``RandomForestClassifier``, also behind our all-numeric preparation (then it takes
    float arrays); any other model is returned as it is (it takes a DataFrame)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(model, RandomForestClassifier):
        return CompiledForest(model)
    if isinstance(model, Pipeline) and len(model.steps) == 2 and isinstance(model[-1], RandomForestClassifier):
        numeric = _numeric_preparation(model[0], n_features or int(getattr(model, "n_features_in_", 0)))
        if numeric is not None:
            return NumericPipeline(*numeric, CompiledForest(model[-1]))
    return model
