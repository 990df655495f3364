import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlpipeline.core.fastforest import CompiledForest, fast_predictor


@pytest.mark.parametrize(
    ("loader", "params"),
    [
        (load_iris, {"n_estimators": 100, "max_depth": 5}),
        (load_iris, {"n_estimators": 1, "max_depth": 1}),
        (load_wine, {"n_estimators": 50, "max_depth": None}),
    ],
)
def test_agrees_with_scikit_learn(loader, params) -> None:  # type: ignore[no-untyped-def]
    X, y = loader(return_X_y=True)
    forest = RandomForestClassifier(random_state=0, **params).fit(X, y)
    compiled = CompiledForest(forest)
    rng = np.random.default_rng(0)
    # Training rows, rows exactly on split thresholds, and random rows around the data range.
    probes = [X, np.repeat(X[:1], X.shape[1], axis=0), rng.uniform(X.min(0) - 1, X.max(0) + 1, (5000, X.shape[1]))]
    thresholds = forest.estimators_[0].tree_.threshold[forest.estimators_[0].tree_.feature >= 0]
    if thresholds.size:
        on_split = X[:1].astype(np.float32).astype(np.float64).repeat(len(thresholds), axis=0)
        on_split[:, forest.estimators_[0].tree_.feature[forest.estimators_[0].tree_.feature >= 0][0]] = thresholds
        probes.append(on_split)
    for probe in probes:
        np.testing.assert_array_equal(compiled.predict(probe), forest.predict(probe))
        np.testing.assert_allclose(compiled.predict_proba(probe), forest.predict_proba(probe), rtol=0, atol=1e-6)


def test_other_models_are_used_as_they_are() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    assert fast_predictor(model) is model
    assert isinstance(fast_predictor(RandomForestClassifier(n_estimators=2).fit(X, y)), CompiledForest)
