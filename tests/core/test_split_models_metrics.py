import pandas as pd
import pytest
from sklearn.datasets import load_iris

from mlpipeline.core.metrics import classification_metrics, confusion, per_class_report
from mlpipeline.core.models import build_model
from mlpipeline.core.split import features_and_target, stratified_split
from mlpipeline.settings import TrainParams


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    df = load_iris(as_frame=True).frame
    df["target_name"] = df["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return df


def test_split_is_stratified_and_deterministic(iris: pd.DataFrame) -> None:
    train, test = stratified_split(iris, test_size=0.2, seed=42)
    assert (len(train), len(test)) == (120, 30)
    assert test["target"].value_counts().to_dict() == {0: 10, 1: 10, 2: 10}
    again_train, _again_test = stratified_split(iris, test_size=0.2, seed=42)
    pd.testing.assert_frame_equal(train, again_train)
    other_train, _ = stratified_split(iris, test_size=0.2, seed=7)
    assert not train.equals(other_train)


def test_features_exclude_label_columns(iris: pd.DataFrame) -> None:
    X, y = features_and_target(iris)
    assert "target" not in X.columns
    assert "target_name" not in X.columns
    assert y.dtype == "int64"


@pytest.mark.parametrize("model", ["random_forest", "logistic_regression"])
def test_models_learn_iris(iris: pd.DataFrame, model: str) -> None:
    train, test = stratified_split(iris, 0.2, 42)
    X, y = features_and_target(train)
    fitted = build_model(TrainParams(model=model)).fit(X, y)  # type: ignore[arg-type]
    Xt, yt = features_and_target(test)
    assert classification_metrics(yt, fitted.predict(Xt))["accuracy"] >= 0.9


def test_random_forest_uses_its_params() -> None:
    model = build_model(TrainParams(n_estimators=7, max_depth=2, seed=3))
    assert (model.n_estimators, model.max_depth, model.random_state) == (7, 2, 3)


def test_metrics_values() -> None:
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 1, 1]
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["accuracy"] == 0.75
    assert set(metrics) == {
        "accuracy",
        *(f"{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "weighted")),
    }
    report = per_class_report(y_true, y_pred, {0: "a", 1: "b"})
    assert report["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2}
    assert confusion(y_true, y_pred, {0: "a", 1: "b"}) == {"labels": ["a", "b"], "matrix": [[1, 1], [0, 2]]}
