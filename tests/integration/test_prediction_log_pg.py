"""The prediction log in the team stack: the machine's real PostgreSQL, through MLPIPELINE_PREDICTION_LOG_URL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

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


def test_feedback_is_stored_in_its_table_all_or_nothing(database: str) -> None:
    from mlpipeline.errors import ServiceUnavailableError
    from mlpipeline.monitoring.predictions import FeedbackStore, read_feedback_table

    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    store = FeedbackStore(Path("unused"), database_url=url)
    store.write([{"request": "a-1", "row": 0, "label": "setosa"}, {"request": "a-1", "row": 1, "label": "virginica"}])
    store.write([{"request": "b-2", "row": 0, "value": 3.5}])
    items = read_feedback_table(url)
    assert [(i["request"], i["row"], i.get("label"), i.get("value")) for i in items] == [
        ("a-1", 0, "setosa", None),
        ("a-1", 1, "virginica", None),
        ("b-2", 0, None, 3.5),
    ]
    down = FeedbackStore(Path("unused"), database_url="postgresql://postgres:pw-xyz@127.0.0.1:1/nowhere")
    with pytest.raises(ServiceUnavailableError, match="cannot store feedback in PostgreSQL") as failed:
        down.write([{"request": "c-3", "row": 0, "label": "setosa"}])
    assert "pw-xyz" not in str(failed.value)
    assert len(read_feedback_table(url)) == 3


def test_a_table_from_before_roles_gains_the_column_and_its_rows_read_as_the_champions(database: str) -> None:
    import psycopg2

    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:  # the table as the last release made it
        cursor.execute("DROP TABLE IF EXISTS mlpipeline_predictions")  # this module's database: its own rows only
        cursor.execute(
            "CREATE TABLE mlpipeline_predictions (id bigserial PRIMARY KEY, time timestamptz NOT NULL, request text "
            "NOT NULL, latency_ms real NOT NULL, body jsonb NOT NULL, response jsonb NOT NULL)"
        )
        answer = {"model": "m", "version": "1", "predictions": [{"label": "a"}]}
        cursor.execute(
            "INSERT INTO mlpipeline_predictions (time, request, latency_ms, body, response) "
            "VALUES (now(), 'old-1', 0.4, %s, %s)",
            (json.dumps({"rows": [{"x": 1.0}]}), json.dumps(answer)),
        )
    connection.close()
    log = PredictionLog(Path("unused"), database_url=url)
    answer = {"model": "m", "version": "2", "predictions": [{"label": "b"}]}
    log.record(0.3, b'{"rows": [{"x": 2.0}]}', json.dumps(answer).encode(), 1, "new-1", "challenger")
    log.close()
    rows = read_table(url)
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:  # the other tests count their rows
        cursor.execute("DROP TABLE mlpipeline_predictions")
    connection.close()
    assert [(r["request"], r["role"], r["version"]) for r in rows] == [
        ("old-1", "champion", "1"),
        ("new-1", "challenger", "2"),
    ]


def test_the_monitor_reads_the_served_rows_from_postgresql(database: str) -> None:
    from mlpipeline.errors import ServiceUnavailableError
    from mlpipeline.monitoring.monitor import served_rows

    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    log = PredictionLog(Path("unused"), database_url=url)
    offer(log, 5, version="7")
    offer(log, 3, version="8")  # another version's answers, newer: not the champion's
    log.close()
    champion = SimpleNamespace(name="m", version="7")
    rows = served_rows(EnvSettings(MLPIPELINE_PREDICTION_LOG_URL=url), None, champion, 7)  # type: ignore[call-arg,arg-type]
    # The newest 7 rows v7 answered, oldest first: request 1's second row, then requests 2 to 4 (two rows each).
    assert [(r["version"], r["inputs"]["x"]) for r in rows] == [("7", -1.0)] + [
        ("7", sign * i) for i in (2.0, 3.0, 4.0) for sign in (1, -1)
    ]
    down = EnvSettings(MLPIPELINE_PREDICTION_LOG_URL="postgresql://postgres:pw-xyz@127.0.0.1:1/x")  # type: ignore[call-arg]
    with pytest.raises(ServiceUnavailableError, match="cannot read the prediction log from PostgreSQL") as failed:
        served_rows(down, None, champion, 7)  # type: ignore[arg-type]
    assert "pw-xyz" not in str(failed.value)


def test_a_restarted_server_remembers_the_newest_answers_and_labels_from_postgresql(database: str) -> None:
    from mlpipeline.monitoring.predictions import FeedbackStore, last_answers

    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    log = PredictionLog(Path("unused"), database_url=url)
    for i in range(6):
        answer = json.dumps({"model": "m", "version": "1", "predictions": [{"label": "a"}] * 2}).encode()
        log.record(0.1, b'{"rows": [{"x": 1}, {"x": 2}]}', answer, 2, request_id=f"r-{i}")
    shadow = json.dumps({"model": "m", "version": "2", "predictions": [{"label": "b"}] * 2}).encode()
    log.record(0.1, b'{"rows": [{"x": 1}, {"x": 2}]}', shadow, 2, request_id="r-5", role="shadow")
    log.close()
    FeedbackStore(Path("unused"), database_url=url).write([{"request": "r-4", "row": 0, "label": "a"}])
    answers, labelled = last_answers(Path("unused"), rows=4, database_url=url)
    assert [(request, role, rows) for request, role, rows, _ in answers] == [
        ("r-4", "champion", 2),
        ("r-5", "champion", 2),
        ("r-5", "shadow", 2),
    ]
    assert json.loads(answers[2][3])["version"] == "2"
    assert labelled == {("r-4", 0)}
