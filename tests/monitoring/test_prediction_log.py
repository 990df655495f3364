"""The prediction log: nothing lost under load, bounded in size, never in a request's way."""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

import pytest

from mlpipeline.monitoring.predictions import PredictionLog, read_log


def offer(log: PredictionLog, requests: int, rows: int = 2, version: str = "1") -> None:
    for i in range(requests):
        inputs = [{"x": float(i), "c": "red"} for _ in range(rows)]
        log.record("m", version, 0.25, inputs, [{"label": "a", "class_id": 0}] * rows)


def test_every_row_of_every_request_from_many_threads_is_written(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log")
    threads = [threading.Thread(target=offer, args=(log, 5_000)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    logged = read_log(tmp_path / "log")
    assert len(logged) == 4 * 5_000 * 2
    assert (log.stats.written, log.stats.dropped, log.stats.failed) == (40_000, 0, 0)
    first = logged[0]
    assert set(first) == {"time", "request", "model", "version", "latency_ms", "inputs", "output"}
    assert first["inputs"] == {"x": 0.0, "c": "red"}
    assert first["output"] == {"label": "a", "class_id": 0}
    assert first["time"].endswith("Z")
    assert len({row["request"] for row in logged}) == 20_000  # two rows per request share its id


def test_rows_given_as_the_requests_own_objects_are_logged_by_their_fields(tmp_path: Path) -> None:
    class Row:
        def __init__(self, x: float) -> None:
            self.x = x

    log = PredictionLog(tmp_path)
    log.record("m", "2", 1.0, [Row(1.5), Row(2.5)], [{"value": 3.0}, {"value": 4.0}])
    log.close()
    assert [(r["inputs"], r["output"], r["version"]) for r in read_log(tmp_path)] == [
        ({"x": 1.5}, {"value": 3.0}, "2"),
        ({"x": 2.5}, {"value": 4.0}, "2"),
    ]


def test_files_roll_over_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_file_bytes=20_000, keep_files=3, flush_seconds=0.01)
    for _ in range(30):
        offer(log, 50)
        time.sleep(0.02)  # let the writer take small batches, as a server under light load does
    log.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) == 3
    assert all(f.stat().st_size < 20_000 + 50 * 2 * 200 for f in files)
    assert log.stats.written == 30 * 50 * 2  # written, then rotated away: the size stays bounded


def test_sampling_keeps_about_that_share_of_requests(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, sample=0.25, rng=random.Random(7))
    offer(log, 4_000, rows=1)
    log.close()
    kept = len(read_log(tmp_path))
    assert kept + log.stats.sampled_out == 4_000
    assert 900 < kept < 1_100


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, queue_size=10, flush_seconds=5)
    blocker = threading.Event()
    original = log._write
    log._write = lambda records, pid: (blocker.wait(10), original(records, pid))  # type: ignore[method-assign]
    start = time.perf_counter()
    offer(log, 1_000, rows=1)
    assert time.perf_counter() - start < 1.0  # never blocked on the stuck writer
    assert log.stats.dropped > 900
    blocker.set()
    log.close()
    assert log.stats.written + log.stats.dropped == 1_000


def test_an_unwritable_folder_costs_the_log_not_the_requests(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    log = PredictionLog(blocked / "log")
    with caplog.at_level(logging.WARNING):
        offer(log, 100)
        log.close()
    assert log.stats.failed == 200
    assert log.stats.written == 0
    assert caplog.text.count("prediction log: cannot write") == 1
