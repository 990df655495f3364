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


def fast_predictor(model: Any) -> Any:
    """A compiled forest for a ``RandomForestClassifier``; any other model is returned as it is."""
    from sklearn.ensemble import RandomForestClassifier

    return CompiledForest(model) if isinstance(model, RandomForestClassifier) else model
