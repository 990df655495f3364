"""The prediction log in the team stack: the machine's real PostgreSQL, through MLPIPELINE_PREDICTION_LOG_URL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mlpipeline.monitoring.predictions import PredictionLog, read_table
from mlpipeline.settings import EnvSettings
from tests.conftest import in_threads

pytestmark = [pytest.mark.integration, pytest.mark.server, pytest.mark.xdist_group("server")]


def offer(log: PredictionLog, requests: int, version: str = "1") -> None:
    for i in range(requests):
        body = json.dumps({"rows": [{"x": float(i)}, {"x": -float(i)}]}).encode()
        answer = {"model": "m", "version": version, "predictions": [{"label": "a"}, {"label": "b"}]}
        log.record(0.5, body, json.dumps(answer).encode(), 2)


def test_every_row_reaches_postgresql_from_many_threads(database: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    log = PredictionLog(Path("unused"), database_url=url)
    in_threads(3, offer, log, 2_000)
    log.close()
    assert (log.stats.written, log.stats.failed, log.stats.dropped) == (12_000, 0, 0)
    rows = read_table(url)
    assert len(rows) == 12_000
    assert rows[0]["inputs"] == {"x": 0.0}
    assert rows[0]["output"] == {"label": "a"}
    assert rows[1]["inputs"] == {"x": -0.0}
    assert {row["version"] for row in rows} == {"1"}
    assert len({row["request"] for row in rows}) == 6_000
    again = PredictionLog(Path("unused"), database_url=url)  # the table exists: appended
    offer(again, 10)
    again.close()
    assert len(read_table(url)) == 12_020


def test_an_unreachable_database_costs_the_log_not_the_requests_and_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.integration.services import free_port

    url = f"postgresql://mlflow:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    log = PredictionLog(Path("unused"), database_url=url)
    with caplog.at_level(logging.WARNING):
        offer(log, 50)
        log.close()
    assert log.stats.failed == 100
    assert log.stats.written == 0
    assert caplog.text.count("prediction log: cannot write to PostgreSQL (MLPIPELINE_PREDICTION_LOG_URL)") == 1
    assert "s3cret-pw" not in caplog.text
    assert "s3cret-pw" not in repr(EnvSettings(MLPIPELINE_PREDICTION_LOG_URL=url))  # type: ignore[call-arg]
