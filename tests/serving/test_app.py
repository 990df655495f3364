"""The HTTP API: every route, agreement with the registered model, every kind of bad request."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlpipeline.serving.app import create_app
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import NAME, Registry

pytestmark = pytest.mark.usefixtures("tmp_cwd")


@pytest.fixture
def client(store: Registry) -> TestClient:
    return TestClient(
        create_app(store.holder(), EnvSettings(serve_max_batch=50, serve_max_body_bytes=16_384, serve_poll_seconds=0))
    )


def predict(client: TestClient, body: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", {"content-type": "application/json"})
    return client.post("/predict", content=body if isinstance(body, (str, bytes)) else json.dumps(body), **kwargs)


def test_health_ready_model_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "version": None}
    assert client.get("/ready").json() == {"status": "ready", "version": "1"}
    info = client.get("/model").json()
    assert info["name"] == NAME
    assert info["version"] == "1"
    assert info["features"] == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    assert info["labels"] == {"0": "setosa", "1": "versicolor", "2": "virginica"}
    assert info["lineage"]["data.train.md5"] == "abc123"
    assert info["follows_alias"] is True
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    row = schema["components"]["schemas"]["Row"]
    assert set(row["required"]) == set(info["features"])
    assert row["additionalProperties"] is False


def test_answers_agree_with_the_registered_model(client: TestClient, store: Registry, rows: list, features) -> None:  # type: ignore[no-untyped-def]
    model = store.models["1"]
    response = predict(client, {"rows": rows})
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"]) == (NAME, "1")
    names = {0: "setosa", 1: "versicolor", 2: "virginica"}
    assert [p["label"] for p in body["predictions"]] == [names[c] for c in model.predict(features)]
    served = np.array([[p["probabilities"][names[c]] for c in model.classes_] for p in body["predictions"]])
    np.testing.assert_allclose(served, model.predict_proba(features), rtol=0, atol=1e-6)
    one = predict(client, {"rows": rows[:1]}).json()["predictions"]
    assert one == body["predictions"][:1]


FIELD = "sepal_length_cm"


def bad_row(rows: list, **change: Any) -> dict:
    row = dict(rows[0])
    for key, value in change.items():
        if value is KeyError:
            row.pop(key)
        else:
            row[key] = value
    return {"rows": [row]}


@pytest.mark.parametrize(
    ("make", "status", "expect"),
    [
        (lambda rows: '{"rows": [', 422, "JSON decode error"),
        (lambda rows: "not json at all", 422, "JSON decode error"),
        (lambda rows: bad_row(rows, sepal_length_cm="5.1"), 422, "valid number"),
        (lambda rows: bad_row(rows, sepal_length_cm=True), 422, "valid number"),
        (lambda rows: bad_row(rows, sepal_length_cm=None), 422, "valid number"),
        (lambda rows: bad_row(rows, sepal_length_cm=KeyError), 422, "Field required"),
        (lambda rows: bad_row(rows, petal_colour=1.0), 422, "Extra inputs are not permitted"),
        (lambda rows: {"rows": rows[:1], "extra": 1}, 422, "Extra inputs are not permitted"),
        (lambda rows: json.dumps(bad_row(rows, sepal_length_cm=float("nan"))), 422, "finite number"),
        (lambda rows: json.dumps(bad_row(rows, sepal_length_cm=float("inf"))), 422, "finite number"),
        (lambda rows: {"rows": []}, 422, "at least 1 item"),
        (lambda rows: {"rows": rows * 2}, 422, "at most 50 items"),
        (lambda rows: {"rows": rows[0]}, 422, "valid list"),
        (lambda rows: [1, 2], 422, "valid dictionary"),
        (lambda rows: '{"rows": [{"\\ud800": 1.0}]}', 422, "lone UTF-16 surrogate"),
        (lambda rows: '{"rows": [{"sepal_length_cm": "\\udc00x"}]}', 422, "lone UTF-16 surrogate"),
        (lambda rows: b'{"rows": [{"sepal_length_cm": "\xff"}]}', 422, "not UTF-8 text (byte 0xff)"),
        (lambda rows: '{"rows": [{"sepal_length_cm": ' + "9" * 5000 + "}]}", 422, "a number with more than"),
        (lambda rows: "[" * 4000 + "]" * 4000, 422, "nested deeper than this server reads"),
        (lambda rows: '{"rows": [' + "[" * 700 + "]" * 700 + "]}", 422, "nested too deep to quote"),
        (lambda rows: json.dumps(rows[0])[:-1] + ', "sepal_length_cm": 9.9}', 422, "'sepal_length_cm' is given twice"),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "string",
        "bool",
        "null",
        "missing-field",
        "extra-field",
        "extra-top-key",
        "nan",
        "inf",
        "empty-batch",
        "over-limit-batch",
        "rows-not-a-list",
        "body-not-an-object",
        "lone-surrogate-key",
        "lone-surrogate-value",
        "not-utf8",
        "overlong-number",
        "deep-nesting",
        "deep-nesting-quoted",
        "duplicate-key",
    ],
)
def test_bad_requests_are_4xx_with_field_level_messages(client: TestClient, rows: list, make, status, expect) -> None:  # type: ignore[no-untyped-def]
    response = predict(client, make(rows), headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert expect in response.text
    if "Field required" in expect or "valid number" in expect or "finite" in expect:
        assert FIELD in json.dumps(response.json()["detail"][0]["loc"])


@pytest.mark.parametrize("path", ["/predict", "/feedback", "/ab"])
def test_a_body_that_is_no_json_value_is_a_422_on_every_route_that_takes_one(client: TestClient, path: str) -> None:
    """Not a 500 (a lone surrogate once crashed the 422's own rendering) and not FastAPI's bare 400."""
    for body in ['{"\\ud800": 1}', b'{"mode": "\xc3"}', '{"mode": "ab", "mode": "off"}', "1" * 5000, "[" * 4000]:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, body[:20], response.text)
        assert response.json()["detail"][0]["msg"].startswith("JSON decode error: "), response.text
    # A valid surrogate pair (an escaped emoji) is a character like any other: refused as a row value, not as JSON.
    pair = client.post(path, content='{"\\ud83d\\ude00": 1}', headers={"content-type": "application/json"})
    assert pair.status_code == 422
    assert "JSON decode error" not in pair.text


def test_oversized_body_is_413_by_header_and_by_stream(client: TestClient, rows: list) -> None:
    big = json.dumps({"rows": rows * 20})
    assert len(big) > 16_384
    response = predict(client, big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than 16384 bytes" in response.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000].encode()

    streamed = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_bearer_token(store: Registry, rows: list, monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLPIPELINE_SERVE_TOKEN", "t0ps3cret-value")
    guarded = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0)))
    body = json.dumps({"rows": rows[:1]})
    json_type = {"content-type": "application/json"}
    assert guarded.post("/predict", content=body, headers=json_type).status_code == 401
    wrong = guarded.post("/predict", content=body, headers={**json_type, "authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert guarded.get("/model", headers={"authorization": "Basic t0ps3cret-value"}).status_code == 401
    ok = guarded.post("/predict", content=body, headers={**json_type, "authorization": "Bearer t0ps3cret-value"})
    assert ok.status_code == 200
    assert guarded.get("/health").status_code == 200  # probes need no token
    assert "t0ps3cret-value" not in caplog.text
    assert "t0ps3cret-value" not in repr(EnvSettings())


def test_a_405_allows_every_method_of_the_path(client: TestClient) -> None:
    """GET /ab and POST /ab are two routes: the Allow of a 405 names both (it named only the first)."""
    for method in ("OPTIONS", "PUT", "DELETE"):
        refused = client.request(method, "/ab")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, POST"
    assert client.request("GET", "/predict").headers["allow"] == "POST"
    assert client.get("/nowhere").status_code == 404
