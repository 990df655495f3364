"""GET /metrics: the Prometheus text format, read back by the standard client library's own parser."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mlpipeline.serving.app import create_app
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import Registry

pytestmark = pytest.mark.usefixtures("tmp_cwd")


def scrape(client: TestClient, **kwargs: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """metric sample name -> {sorted labels: value}, as a Prometheus server would read them."""
    answer = client.get("/metrics", **kwargs)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_requests_errors_latency_and_rows_per_version(store: Registry, rows: list[dict[str, float]]) -> None:
    client = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0, serve_max_body_bytes=4096)))
    json_type = {"content-type": "application/json"}
    for size in (1, 3, 5):
        assert client.post("/predict", content=json.dumps({"rows": rows[:size]}), headers=json_type).status_code == 200
    assert client.post("/predict", content=json.dumps({"rows": [{"x": 1}]}), headers=json_type).status_code == 422
    assert client.post("/predict", content=b"[" * 5000, headers=json_type).status_code == 413
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/health").status_code == 200

    metrics = scrape(client)
    requests = metrics["mlpipeline_requests_total"]

    def count(route: str, status: str, method: str = "POST") -> float:
        return requests.get((("method", method), ("route", route), ("status", status), ("version", "1")), 0.0)

    assert count("/predict", "200") == 3
    assert count("/predict", "422") == 1
    assert count("/predict", "413") == 1  # refused by the body limit, still counted
    assert count("other", "404", "GET") == 1  # an unknown path is "other": no series per random URL
    assert count("/health", "200", "GET") == 1
    assert metrics["mlpipeline_predicted_rows_total"] == {(("version", "1"),): 9.0}
    latency = metrics["mlpipeline_request_duration_seconds_count"]
    assert latency[(("route", "/predict"), ("version", "1"))] == 5
    buckets = metrics["mlpipeline_request_duration_seconds_bucket"]
    assert buckets[(("le", "+Inf"), ("route", "/predict"), ("version", "1"))] == 5
    assert metrics["mlpipeline_request_duration_seconds_sum"][(("route", "/predict"), ("version", "1"))] > 0
    # The scrape itself is counted from the next scrape on.
    assert (
        scrape(client)["mlpipeline_requests_total"][
            (("method", "GET"), ("route", "/metrics"), ("status", "200"), ("version", "1"))
        ]
        == 1
    )


def test_metrics_need_the_token_when_one_is_set(store: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPELINE_SERVE_TOKEN", "t0ps3cret-value")
    client = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0)))
    assert client.get("/metrics").status_code == 401
    assert "mlpipeline_requests_total" in scrape(client, headers={"authorization": "Bearer t0ps3cret-value"})


def test_each_server_counts_only_its_own_requests(store: Registry) -> None:
    first = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0)))
    second = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0)))
    first.get("/health")
    health = (("method", "GET"), ("route", "/health"), ("status", "200"), ("version", "1"))
    assert health in scrape(first)["mlpipeline_requests_total"]
    assert health not in scrape(second).get("mlpipeline_requests_total", {})


def test_every_prediction_is_logged_with_its_inputs_version_and_latency(
    store: Registry, rows: list[dict[str, float]], tmp_cwd: Path
) -> None:
    from mlpipeline.monitoring.predictions import read_log

    client = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0)))
    json_type = {"content-type": "application/json"}
    answers = [
        client.post("/predict", content=json.dumps({"rows": rows[i : i + 3]}), headers=json_type).json()
        for i in range(0, 30, 3)
    ]
    deadline = time.monotonic() + 30  # bounded; the writer is done in milliseconds unless the machine is loaded
    written: dict[tuple[tuple[str, str], ...], float] = {}
    while time.monotonic() < deadline:  # the log is written by its own thread, a moment later
        written = scrape(client)["mlpipeline_prediction_log_total"]
        if written[(("outcome", "written"),)] == 30:
            break
        time.sleep(0.05)
    assert written[(("outcome", "written"),)] == 30
    assert written[(("outcome", "dropped"),)] == 0
    logged = read_log(tmp_cwd / "logs" / "predictions")
    assert [r["inputs"] for r in logged] == rows[:30]
    assert [r["output"] for r in logged] == [p for a in answers for p in a["predictions"]]
    assert {r["version"] for r in logged} == {"1"}
    assert all(r["latency_ms"] > 0 for r in logged)


def test_the_log_can_be_switched_off(store: Registry, rows: list[dict[str, float]], tmp_cwd: Path) -> None:
    client = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0, prediction_log_dir="off")))
    assert client.post("/predict", json={"rows": rows[:1]}).status_code == 200
    assert "mlpipeline_prediction_log_total" not in scrape(client)
    assert not (tmp_cwd / "logs").exists()
