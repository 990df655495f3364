import re

import pandas as pd
import pytest

from mlpipeline.core.estimators import ESTIMATORS
from mlpipeline.core.metrics import (
    classification_metrics,
    confusion,
    per_class_report,
    regression_metrics,
    residual_summary,
)
from mlpipeline.core.models import build_model
from mlpipeline.core.schema import Schema
from mlpipeline.core.split import split
from mlpipeline.settings import TrainParams
from tests import datasets


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return datasets.iris()[0]


IRIS_SCHEMA = datasets.iris()[1]


def stratified_split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(df, test_size, seed, stratify=True)


def test_split_is_stratified_and_deterministic(iris: pd.DataFrame) -> None:
    train, test = stratified_split(iris, test_size=0.2, seed=42)
    assert (len(train), len(test)) == (120, 30)
    assert test["target"].value_counts().to_dict() == {0: 10, 1: 10, 2: 10}
    again_train, _again_test = stratified_split(iris, test_size=0.2, seed=42)
    pd.testing.assert_frame_equal(train, again_train)
    other_train, _ = stratified_split(iris, test_size=0.2, seed=7)
    assert not train.equals(other_train)


def test_model_input_excludes_label_columns(iris: pd.DataFrame) -> None:
    X, y = IRIS_SCHEMA.model_input(iris), IRIS_SCHEMA.target(iris)
    assert "target" not in X.columns
    assert "target_name" not in X.columns
    assert y.dtype == "int64"


@pytest.mark.parametrize("model", sorted(ESTIMATORS))
def test_models_learn_iris(iris: pd.DataFrame, model: str) -> None:
    train, test = stratified_split(iris, 0.2, 42)
    fitted = build_model(TrainParams(model=model), IRIS_SCHEMA)  # type: ignore[arg-type]
    fitted.fit(IRIS_SCHEMA.model_input(train), IRIS_SCHEMA.target(train))
    predicted = fitted.predict(IRIS_SCHEMA.model_input(test))
    assert classification_metrics(IRIS_SCHEMA.target(test), predicted)["accuracy"] >= 0.9


@pytest.mark.parametrize("model", sorted(ESTIMATORS))
@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_models_take_raw_categories_and_gaps(model: str, encoding: str) -> None:
    """Strings and missing values go into the model as they are; a category never seen gives an answer too."""
    for task in ("classification", "regression"):
        if task == "regression" and model == "logistic_regression":
            continue
        df, schema = datasets.mixed(task=task)
        train, test = split(df, 0.25, 1, stratify=task == "classification")
        fitted = build_model(TrainParams(model=model, encoding=encoding), schema)  # type: ignore[arg-type]
        fitted.fit(schema.model_input(train), schema.target(train))
        predicted = fitted.predict(schema.model_input(test))
        if task == "classification":
            assert classification_metrics(schema.target(test), predicted)["accuracy"] >= 0.75, (model, encoding)
        else:
            assert regression_metrics(schema.target(test), predicted)["r2"] >= 0.6, (model, encoding)
        unseen = pd.DataFrame({"colour": ["purple"], "size": [float("nan")], "shape": [None]})
        assert len(fitted.predict(schema.model_input(unseen))) == 1


def test_linear_scales_numbers_and_the_forest_does_not(iris: pd.DataFrame) -> None:
    def steps(model: str, scale: str = "auto") -> list[str]:
        built = build_model(TrainParams(model=model, scale=scale), IRIS_SCHEMA)  # type: ignore[arg-type]
        return [type(step).__name__ for _, step in built.named_steps["prepare"].transformers[0][1].steps]

    assert "StandardScaler" in steps("linear")
    assert "StandardScaler" not in steps("random_forest")
    assert "StandardScaler" in steps("random_forest", "standard")
    assert "StandardScaler" not in steps("linear", "none")


def test_random_forest_uses_its_params() -> None:
    model = build_model(TrainParams(n_estimators=7, max_depth=2, seed=3), IRIS_SCHEMA)[-1]
    assert (model.n_estimators, model.max_depth, model.random_state) == (7, 2, 3)


def test_regression_metrics_and_residuals() -> None:
    metrics = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert metrics == {"rmse": 1.0, "mae": 0.5, "r2": 0.2}
    assert residual_summary([1.0, 2.0], [1.0, 4.0])["max_abs"] == 2.0


def test_schema_reads_categories_as_text() -> None:
    schema = Schema.model_validate(
        {"task": "regression", "features": {"zip": {"kind": "categorical", "categories": ["01234", "99"]}}}
    )
    assert schema.csv_dtypes() == {"zip": "string"}
    frame = schema.model_input(pd.DataFrame({"zip": pd.array(["01234", None], dtype="string")}))
    assert frame["zip"].tolist()[0] == "01234"
    assert pd.isna(frame["zip"].tolist()[1])


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


@pytest.mark.parametrize("seed", [0, 42, 2026])
@pytest.mark.parametrize("test_size", [0.2, 0.33, 0.5])
def test_holdout_rows_are_those_train_test_split_draws(seed: int, test_size: float) -> None:
    """The memory-light split draws exactly the rows scikit-learn's train_test_split would (same random numbers),
    stratified (uneven, non-contiguous class codes) or not: a scikit-learn upgrade that changes it fails here."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from mlpipeline.core.split import holdout_rows

    labels = np.random.default_rng(seed).choice([-3, 0, 7, 8], size=1_003, p=[0.5, 0.3, 0.15, 0.05])
    rows = np.arange(len(labels))
    _, expected = train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)
    assert holdout_rows(len(rows), test_size, seed, labels).tolist() == sorted(expected.tolist())
    _, unstratified = train_test_split(rows, test_size=test_size, random_state=seed)
    assert holdout_rows(len(rows), test_size, seed).tolist() == sorted(unstratified.tolist())


def test_holdout_rows_refuse_what_cannot_be_split() -> None:
    import numpy as np

    from mlpipeline.core.split import holdout_rows

    with pytest.raises(ValueError, match=r"class 'virginica' has 1 row: a stratified split needs at least 2 rows"):
        holdout_rows(5, 0.4, 0, np.array([0, 0, 1, 1, 2]), {0: "setosa", 1: "versicolor", 2: "virginica"})
    labels = np.repeat([0, 1, 2], 20)
    with pytest.raises(ValueError, match="cannot hold each of the 3 classes") as refused:
        holdout_rows(60, 0.02, 0, labels)
    low, high = map(float, re.search(r"between ([\d.]+) and ([\d.]+)", str(refused.value)).groups())  # type: ignore[union-attr]
    for test_size in (low, high):  # the advice works at both ends
        assert len(np.unique(labels[holdout_rows(60, test_size, 0, labels)])) == 3
