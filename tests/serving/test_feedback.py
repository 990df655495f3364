"""POST /feedback: labels for earlier answers, checked per item, stored beside the log, scored per version."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlpipeline.monitoring.predictions import read_feedback
from mlpipeline.serving.app import create_app
from mlpipeline.serving.metrics import ServerMetrics
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import Registry
from tests.serving.test_metrics import scrape

pytestmark = pytest.mark.usefixtures("tmp_cwd")
JSON = {"content-type": "application/json"}


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"


def server(store: Registry, log_dir: Path, **values: Any) -> TestClient:
    settings = {"serve_poll_seconds": 0, "prediction_log_dir": str(log_dir), "serve_max_batch": 20, **values}
    return TestClient(create_app(store.holder(), EnvSettings(**settings)))


def answered(client: TestClient, rows: list) -> tuple[str, list[str]]:
    body = client.post("/predict", content=json.dumps({"rows": rows}), headers=JSON).json()
    return body["request_id"], [p["label"] for p in body["predictions"]]


def test_labels_are_checked_per_item_stored_and_scored(store: Registry, rows: list, log_dir: Path) -> None:
    client = server(store, log_dir)
    first, labels = answered(client, rows[:2])
    wrong = "setosa" if labels[1] != "setosa" else "virginica"
    items = [
        {"request_id": first, "row": 0, "label": labels[0]},
        {"request_id": first, "row": 1, "label": wrong},
        {"request_id": first, "row": 0, "label": labels[0]},  # sent twice
        {"request_id": first, "row": 2, "label": "setosa"},  # the request had two rows
        {"request_id": "nobody-1", "label": "setosa"},
    ]
    answer = client.post("/feedback", json={"items": items})
    assert answer.status_code == 200
    assert answer.json() == {
        "stored": 2,
        "items": [
            {"request_id": first, "row": 0, "status": "stored"},
            {"request_id": first, "row": 1, "status": "stored"},
            {"request_id": first, "row": 0, "status": "already_labelled"},
            {"request_id": first, "row": 2, "status": "row_out_of_range"},
            {"request_id": "nobody-1", "row": 0, "status": "unknown_request"},
        ],
    }
    stored = read_feedback(log_dir)
    assert [(f["request"], f["row"], f["label"]) for f in stored] == [(first, 0, labels[0]), (first, 1, wrong)]
    counted = scrape(client)["mlpipeline_feedback_rows_total"]
    assert counted[(("outcome", "correct"), ("role", "champion"), ("version", "1"))] == 1
    assert counted[(("outcome", "wrong"), ("role", "champion"), ("version", "1"))] == 1


def test_a_restarted_server_takes_labels_for_what_it_answered_before(
    store: Registry, rows: list, log_dir: Path
) -> None:
    with server(store, log_dir, serve_feedback_window=4) as before:
        gone, _ = answered(before, rows[:1])  # beyond the window after the next requests: not remembered
        old, labels = answered(before, rows[1:3])
        last, last_labels = answered(before, rows[3:5])
        assert before.post("/feedback", json={"items": [{"request_id": old, "label": labels[0]}]}).json()["stored"]
    # The server stopped (its log flushed); a new process over the same log remembers the newest 4 rows.
    with server(store, log_dir, serve_feedback_window=4) as after:
        items = [
            {"request_id": old, "row": 0, "label": labels[0]},
            {"request_id": old, "row": 1, "label": labels[1]},
            {"request_id": last, "row": 1, "label": last_labels[1]},
            {"request_id": last, "row": 2, "label": last_labels[1]},
            {"request_id": gone, "row": 0, "label": "setosa"},
        ]
        answer = after.post("/feedback", json={"items": items}).json()
        assert [item["status"] for item in answer["items"]] == [
            "already_labelled",
            "stored",
            "stored",
            "row_out_of_range",
            "unknown_request",
        ]
        counted = scrape(after)["mlpipeline_feedback_rows_total"]
        assert counted[(("outcome", "correct"), ("role", "champion"), ("version", "1"))] == 2
    assert [(f["request"], f["row"]) for f in read_feedback(log_dir)] == [(old, 0), (old, 1), (last, 1)]


def test_an_unreadable_log_costs_the_memory_of_earlier_answers_not_the_server(
    store: Registry, rows: list, log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_dir.mkdir()
    (log_dir / "predictions-20260101T000000000000-1.jsonl").write_text('{"not": "a logged request"}\n')
    with caplog.at_level(logging.WARNING), server(store, log_dir) as client:
        request_id, labels = answered(client, rows[:1])
        assert client.post("/feedback", json={"items": [{"request_id": request_id, "label": labels[0]}]}).json()[
            "stored"
        ]
    assert "feedback: cannot read earlier answers from the prediction log in" in caplog.text
    assert "unknown_request" in caplog.text


def test_feedback_in_shadow_mode_scores_the_challenger_too(
    store: Registry, challenger: str, rows: list, log_dir: Path
) -> None:
    with server(store, log_dir, serve_ab_mode="shadow", serve_ab_share=1.0) as client:
        request_id, labels = answered(client, rows[:1])
        for _ in range(200):  # the challenger scores in the background: wait (bounded) until it has
            if client.get("/ab").json()["shadow"]["scored"] == 1:
                break
        assert (
            client.post("/feedback", json={"items": [{"request_id": request_id, "label": labels[0]}]}).json()["stored"]
            == 1
        )
        roles = {dict(k)["role"]: dict(k)["version"] for k in scrape(client)["mlpipeline_feedback_rows_total"]}
    assert roles == {"champion": "1", "shadow": challenger}


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ({"items": [{"request_id": "a-1", "label": 2}]}, "'setosa', 'versicolor' or 'virginica'"),
        ({"items": [{"request_id": "a-1", "label": "daisy"}]}, "'setosa', 'versicolor' or 'virginica'"),
        ({"items": [{"request_id": "a-1", "row": "0", "label": "setosa"}]}, "valid integer"),
        ({"items": [{"request_id": "a-1", "row": 0.5, "label": "setosa"}]}, "valid integer"),
        ({"items": [{"request_id": "a-1", "row": -1, "label": "setosa"}]}, "greater than or equal to 0"),
        ({"items": [{"label": "setosa"}]}, "Field required"),
        ({"items": [{"request_id": "a-1"}]}, "Field required"),
        ({"items": [{"request_id": "a-1", "label": "setosa", "value": 1.0}]}, "Extra inputs are not permitted"),
        ({"items": []}, "at least 1 item"),
        ({"items": [{"request_id": "a-1", "label": "setosa"}] * 21}, "at most 20 items"),
        ({"labels": []}, "Field required"),
    ],
    ids=[
        "label-a-number",
        "unknown-label",
        "row-as-text",
        "row-fraction",
        "row-negative",
        "no-request-id",
        "no-label",
        "extra-field",
        "empty",
        "too-many",
        "no-items",
    ],
)
def test_malformed_feedback_is_a_422_and_stores_nothing(
    store: Registry, log_dir: Path, body: dict, expect: str
) -> None:
    answer = server(store, log_dir).post("/feedback", json=body)
    assert answer.status_code == 422, answer.text
    assert expect in answer.text
    assert read_feedback(log_dir) == []


def test_without_a_prediction_log_feedback_is_refused_clearly(store: Registry, rows: list) -> None:
    client = server(store, Path("off"), prediction_log_dir="off")
    request_id, labels = answered(client, rows[:1])
    answer = client.post("/feedback", json={"items": [{"request_id": request_id, "label": labels[0]}]})
    assert answer.status_code == 409
    assert "MLPIPELINE_PREDICTION_LOG_DIR" in answer.json()["detail"]


def test_feedback_that_cannot_be_stored_is_a_503_and_can_be_sent_again(
    store: Registry, rows: list, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    client = server(store, blocked / "log")
    request_id, labels = answered(client, rows[:1])
    item = {"items": [{"request_id": request_id, "label": labels[0]}]}
    answer = client.post("/feedback", json=item)
    assert answer.status_code == 503
    assert "nothing was stored, send it again" in answer.json()["detail"]
    blocked.unlink()  # the disk is back
    assert client.post("/feedback", json=item).json()["stored"] == 1
    assert len(read_feedback(blocked / "log")) == 1


def test_regression_feedback_counts_absolute_errors() -> None:
    metrics = ServerMetrics()
    answer = json.dumps({"model": "m", "version": "4", "predictions": [{"value": 2.0}, {"value": 5.0}]}).encode()
    metrics.count_feedback([("challenger", answer)], 1, 3.5)
    metrics.count_feedback([("challenger", answer)], 0, 2.5)
    samples = {s.name: s.value for m in metrics.registry.collect() for s in m.samples}
    assert samples["mlpipeline_feedback_abs_error_total"] == 2.0  # |3.5 - 5| + |2.5 - 2|
    assert samples["mlpipeline_feedback_rows_total"] == 2
