"""Serving models of any data set: text categories, missing values, regression values, clear 422s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlpipeline.core.fastforest import NumericPipeline, fast_predictor
from mlpipeline.core.models import build_model
from mlpipeline.serving.app import create_app
from mlpipeline.serving.model import LoadedModel, ModelHolder
from mlpipeline.settings import EnvSettings, TrainParams
from tests import datasets


def serve(task: str, model: str = "random_forest") -> tuple[TestClient, Any]:
    df, schema = datasets.mixed(task=task)
    fitted = build_model(TrainParams(model=model), schema).fit(schema.model_input(df), schema.target(df))  # type: ignore[arg-type]
    loaded = LoadedModel(
        "shop", "1", "run1", tuple(schema.features), schema.labels, fast_predictor(fitted, 3), schema=schema
    )
    holder = ModelHolder(lambda version: loaded, None, "1")
    return TestClient(create_app(holder, EnvSettings())), fitted


def test_strings_and_nulls_are_served_like_the_model_predicts_them() -> None:
    client, fitted = serve("classification")
    rows = [
        {"colour": "red", "size": 12.5, "shape": "round"},
        {"colour": "blue", "size": None, "shape": None},  # nullable in the contract: imputed by the model
    ]
    answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    _, schema = datasets.mixed()
    import pandas as pd

    expected = fitted.predict(schema.model_input(pd.DataFrame(rows)))
    assert [p["class_id"] for p in predictions] == [int(c) for c in expected]
    assert {p["label"] for p in predictions} <= {"low", "high"}
    assert client.get("/model").json()["task"] == "classification"


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        ({"colour": "purple", "size": 1.0, "shape": "round"}, "colour", "'blue', 'green' or 'red'"),
        ({"colour": None, "size": 1.0, "shape": "round"}, "colour", "'blue', 'green' or 'red'"),  # not nullable
        ({"colour": "red", "size": "big", "shape": "round"}, "size", "number"),
        ({"size": 1.0, "shape": "round"}, "colour", "required"),  # never had gaps: it must be sent
    ],
)
def test_a_bad_value_is_a_422_naming_the_field_and_the_allowed_values(
    row: dict[str, Any], field: str, says: str
) -> None:
    client, _ = serve("classification")
    answer = client.post("/predict", json={"rows": [row]})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert any(d["loc"][-1] == field and says in d["msg"].lower().replace('"', "'") for d in detail), detail


def test_the_openapi_schema_lists_categories_and_optional_fields() -> None:
    client, _ = serve("classification")
    row = client.get("/openapi.json").json()["components"]["schemas"]["Row"]
    assert row["properties"]["colour"]["enum"] == ["blue", "green", "red"]
    assert row["required"] == ["colour"]  # size and shape had gaps in training: null or left out
    assert "or null (missing: the model imputes it)" in row["properties"]["size"]["description"]


def test_a_column_that_had_gaps_in_training_may_be_null_or_left_out() -> None:
    client, fitted = serve("classification")
    import pandas as pd

    _, schema = datasets.mixed()
    full = [{"colour": "blue", "size": None, "shape": None}]
    left_out = client.post("/predict", json={"rows": [{"colour": "blue"}]})
    assert left_out.status_code == 200, left_out.text
    expected = fitted.predict(schema.model_input(pd.DataFrame(full)))
    assert left_out.json()["predictions"][0]["class_id"] == int(expected[0])


@pytest.mark.parametrize("model", ["random_forest", "linear", "hist_gradient_boosting"])
def test_a_regression_model_answers_values(model: str) -> None:
    client, _fitted = serve("regression", model)
    answer = client.post("/predict", json={"rows": [{"colour": "red", "size": 10.0, "shape": "square"}]})
    assert answer.status_code == 200, answer.text
    value = answer.json()["predictions"][0]["value"]
    assert isinstance(value, float)
    assert 5.0 < value < 25.0


def test_an_all_numeric_forest_is_compiled_and_agrees_with_scikit_learn() -> None:
    df, schema = datasets.iris()
    fitted = build_model(TrainParams(), schema).fit(schema.model_input(df), schema.target(df))
    compiled = fast_predictor(fitted, 4)
    assert isinstance(compiled, NumericPipeline)
    X = schema.model_input(df)
    X.iloc[::7, 1] = float("nan")  # gaps are imputed with the fitted medians, as scikit-learn does
    assert (compiled.predict(X.to_numpy()) == fitted.predict(X)).all()
    assert abs(compiled.predict_proba(X.to_numpy()) - fitted.predict_proba(X)).max() < 1e-9


def test_the_data_s_own_column_names_are_accepted_documented_suggested_and_logged_by_feature(tmp_path: Any) -> None:
    from mlpipeline.monitoring.predictions import read_log

    df, schema = datasets.mixed(task="classification")
    named = {"colour": "Colour Name", "size": "Size (cm)"}
    features = {n: i.model_copy(update={"source_name": named.get(n)}) for n, i in schema.features.items()}
    schema = schema.model_copy(update={"features": features})
    fitted = build_model(TrainParams(), schema).fit(schema.model_input(df), schema.target(df))  # type: ignore[arg-type]
    loaded = LoadedModel("shop", "1", "run1", tuple(schema.features), schema.labels, fitted, schema=schema)
    app = create_app(ModelHolder(lambda version: loaded, None, "1"), EnvSettings(prediction_log_dir=str(tmp_path)))
    with TestClient(app) as client:
        own = client.post("/predict", json={"rows": [{"Colour Name": "red", "Size (cm)": 12.5, "shape": "round"}]})
        snake = client.post("/predict", json={"rows": [{"colour": "red", "size": 12.5, "shape": "round"}]})
        assert own.status_code == snake.status_code == 200, own.text
        assert own.json()["predictions"] == snake.json()["predictions"]
        described = client.get("/openapi.json").json()["components"]["schemas"]["Row"]["properties"]
        assert "also accepted as 'Colour Name', the data's own name" in described["colour"]["description"]
        for wrong, meant in (("Colour name", "Colour Name"), ("colur", "colour")):
            typo = client.post("/predict", json={"rows": [{wrong: "red", "size": 1.0}]})
            assert typo.status_code == 422
            msgs = [d["msg"] for d in typo.json()["detail"] if d["loc"][-1] == wrong]
            assert msgs == [f"Extra inputs are not permitted: no feature {wrong!r} (did you mean {meant!r}?)"]
    logged = [r["inputs"] for r in read_log(tmp_path)]
    assert logged[0] == logged[1] == {"colour": "red", "size": 12.5, "shape": "round"}  # what drift reads
