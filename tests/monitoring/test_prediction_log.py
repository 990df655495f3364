"""The prediction log: nothing lost under load, bounded in size, never in a request's way."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpipeline.errors import ServiceUnavailableError
from mlpipeline.monitoring.predictions import FeedbackStore, PredictionLog, read_feedback, read_log
from tests.conftest import in_threads


def offer(log: PredictionLog, requests: int, rows: int = 2, version: str = "1") -> None:
    """What the server offers: the request's JSON body and its JSON answer, as bytes."""
    for i in range(requests):
        body = json.dumps({"rows": [{"x": float(i), "c": "red"}] * rows}, indent=1).encode()  # line breaks too
        answer = {"model": "m", "version": version, "predictions": [{"label": "a", "class_id": 0}] * rows}
        log.record(0.25, body, json.dumps(answer).encode(), rows)


def test_every_row_of_every_request_from_many_threads_is_written(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log")
    in_threads(4, offer, log, 5_000)
    log.close()
    logged = read_log(tmp_path / "log")
    assert len(logged) == 4 * 5_000 * 2
    assert (log.stats.written, log.stats.dropped, log.stats.failed) == (40_000, 0, 0)
    first = logged[0]
    assert set(first) == {"time", "request", "role", "model", "version", "latency_ms", "row", "inputs", "output"}
    assert (first["role"], first["row"], logged[1]["row"]) == ("champion", 0, 1)
    assert first["inputs"] == {"x": 0.0, "c": "red"}
    assert first["output"] == {"label": "a", "class_id": 0}
    assert first["time"].endswith("Z")
    assert len({row["request"] for row in logged}) == 20_000  # two rows per request share its id


def test_one_line_per_request_whatever_the_body_looks_like(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    body = b'{\r\n  "rows": [{"x": 1.5, "note": "a\\nb"},\n {"x": 2.5, "note": null}]\n}'
    answer = b'{"model":"m","version":"2","predictions":[{"value":3.0},{"value":4.0}]}'
    log.record(1.0, body, answer, 2)
    log.close()
    (path,) = tmp_path.glob("predictions-*.jsonl")
    assert len(path.read_bytes().splitlines()) == 1
    assert [(r["inputs"], r["output"], r["version"]) for r in read_log(tmp_path)] == [
        ({"x": 1.5, "note": "a\nb"}, {"value": 3.0}, "2"),
        ({"x": 2.5, "note": None}, {"value": 4.0}, "2"),
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


def test_the_request_id_and_role_given_are_logged(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    answer = b'{"model":"m","version":"2","request_id":"ab12-7","predictions":[{"value":3.0}]}'
    log.record(0.5, b'{"rows":[{"x":1.0}]}', answer, 1, "ab12-7", "challenger")
    log.record(0.7, b'{"rows":[{"x":1.0}]}', answer.replace(b'"2"', b'"3"'), 1, "ab12-7", "shadow")
    log.close()
    assert [(r["request"], r["role"], r["version"]) for r in read_log(tmp_path)] == [
        ("ab12-7", "challenger", "2"),
        ("ab12-7", "shadow", "3"),
    ]


def test_lines_from_before_roles_read_as_the_champions(tmp_path: Path) -> None:
    line = {"time": "t", "request": "1-1", "latency_ms": 0.1, "body": {"rows": [{"x": 1}]}}
    line["response"] = {"model": "m", "version": "1", "predictions": [{"value": 2.0}]}
    (tmp_path / "predictions-old.jsonl").write_text(json.dumps(line) + "\n")
    assert read_log(tmp_path)[0]["role"] == "champion"


def test_feedback_is_appended_durably_and_read_back(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    store.write([{"request": "a-1", "row": 0, "label": "setosa"}])
    FeedbackStore(tmp_path).write([{"request": "a-2", "row": 3, "value": 1.5}])  # a restarted server: a new file
    assert [(f["request"], f["row"], f.get("label"), f.get("value")) for f in read_feedback(tmp_path)] == [
        ("a-1", 0, "setosa", None),
        ("a-2", 3, None, 1.5),
    ]
    assert read_log(tmp_path) == []  # feedback files are not prediction files


def test_feedback_that_cannot_be_stored_is_an_error_naming_where(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    with pytest.raises(ServiceUnavailableError, match=r"cannot store feedback in .*not-a-folder"):
        FeedbackStore(blocked / "log").write([{"request": "a-1", "row": 0, "label": "x"}])


def test_a_line_cut_short_by_a_crash_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(tmp_path)
    offer(log, 3)
    log.close()
    (path,) = tmp_path.glob("predictions-*.jsonl")
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])  # killed in the middle of the next write
    with caplog.at_level(logging.WARNING):
        logged = read_log(tmp_path)
    assert len(logged) == 3 * 2
    assert "skipped 1 unreadable line(s)" in caplog.text


def test_the_last_answers_cover_the_rows_asked_for_with_their_shadows_and_labels(tmp_path: Path) -> None:
    from mlpipeline.monitoring.predictions import last_answers

    log = PredictionLog(tmp_path, max_file_bytes=1_000)  # several files: read newest first
    for i in range(10):
        answer = json.dumps({"model": "m", "version": "1", "predictions": [{"label": "a"}] * 2}).encode()
        log.record(0.1, b'{"rows": [{"x": 1}, {"x": 2}]}', answer, 2, request_id=f"r-{i}")
        if i % 2:
            shadow = json.dumps({"model": "m", "version": "2", "predictions": [{"label": "b"}] * 2}).encode()
            log.record(0.1, b'{"rows": [{"x": 1}, {"x": 2}]}', shadow, 2, request_id=f"r-{i}", role="shadow")
        time.sleep(0.06)  # one write a request: files roll over between them
    log.close()
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) > 1
    FeedbackStore(tmp_path).write(
        [{"request": "r-8", "row": 1, "label": "a"}, {"request": "r-0", "row": 0, "label": "a"}]
    )
    answers, labelled = last_answers(tmp_path, rows=5)
    # 5 rows: the three newest requests (2 rows each), oldest first, each shadow after its request.
    assert [(request, role, rows) for request, role, rows, _ in answers] == [
        ("r-7", "champion", 2),
        ("r-7", "shadow", 2),
        ("r-8", "champion", 2),
        ("r-9", "champion", 2),
        ("r-9", "shadow", 2),
    ]
    assert json.loads(answers[2][3])["predictions"] == [{"label": "a"}] * 2
    assert labelled == {("r-8", 1)}  # r-0 is older than the rows asked for
    assert last_answers(tmp_path / "nothing-here", rows=5) == ([], set())


def test_the_newest_rows_of_one_version_are_read_from_the_end_of_the_log(tmp_path: Path) -> None:
    from mlpipeline.monitoring.predictions import newest_rows

    log = PredictionLog(tmp_path, max_file_bytes=2_000, flush_seconds=0.01)
    for version in ("1", "2", "1", "2"):  # older files, then newer: two versions answering in turns
        offer(log, 10, version=version)
        time.sleep(0.05)
    log.close()
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) > 2
    everything = read_log(tmp_path)
    for version in ("1", "2"):
        answered = [row for row in everything if row["version"] == version]
        assert newest_rows(tmp_path, "m", version, 25) == answered[-25:]
        assert newest_rows(tmp_path, "m", version, 1_000) == answered
    assert newest_rows(tmp_path, "other", "1", 10) == []


def test_the_last_answers_read_older_lines_whole_and_skip_torn_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mlpipeline.monitoring.predictions import last_answers

    log = PredictionLog(tmp_path)
    log.record(0.1, b'{"rows": [{"x": 1}]}', b'{"model":"m","version":"1","predictions":[{"label":"a"}]}', 1, "new-1")
    log.close()
    (path,) = tmp_path.glob("predictions-*.jsonl")
    new_line = path.read_bytes()
    answer = {"model": "m", "version": "1", "predictions": [{"label": "b"}, {"label": "c"}]}
    old_line = json.dumps(
        {"time": "t", "request": "old-1", "latency_ms": 0.1, "body": {"rows": [{}, {}]}, "response": answer}
    )
    path.write_bytes(old_line.encode() + b"\n" + new_line + new_line[:30])  # before roles were logged; a crash
    with caplog.at_level(logging.WARNING):
        answers, _ = last_answers(tmp_path, rows=10)
    assert [(request, role, rows) for request, role, rows, _ in answers] == [
        ("old-1", "champion", 2),
        ("new-1", "champion", 1),
    ]
    assert json.loads(answers[0][3]) == answer
    assert json.loads(answers[1][3]) == {"model": "m", "version": "1", "predictions": [{"label": "a"}]}
    assert "skipped 1 unreadable line(s)" in caplog.text


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB file system of its own (a tmpfs: needs root, which CI has), unmounted afterwards."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_keeps_every_row_counted_written(small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Batches that fail on a full disk open no new files and delete none: every row counted written is still
    there to read, and the disk holds no half line. Writing goes on once there is room again."""
    log = PredictionLog(small_disk, max_file_bytes=24_000, keep_files=40, flush_seconds=0.005)
    with caplog.at_level(logging.WARNING):
        for _ in range(400):  # about 2 MB offered to 256 KiB: the disk fills, then many batches fail on it
            offer(log, 5)
            time.sleep(0.006)
        time.sleep(0.05)
        assert log.stats.failed > 0
        oldest = sorted(small_disk.glob("predictions-*.jsonl"))[0]
        removed = sum(len(json.loads(line)["body"]["rows"]) for line in oldest.read_bytes().splitlines())
        oldest.unlink()  # room again (its rows are gone now, on purpose)
        before = log.stats.written
        offer(log, 5)
        log.close()
    assert log.stats.written == before + 10  # written again once there was room
    files = list(small_disk.glob("predictions-*.jsonl"))
    assert all(f.stat().st_size for f in files), "an empty file per failed batch"
    assert all(f.read_bytes().endswith(b"\n") for f in files), "a half line left by a write cut short"
    assert len(read_log(small_disk)) == log.stats.written - removed  # every row counted written, readable
    assert "unreadable line" not in caplog.text


def test_retention_never_deletes_the_file_another_live_server_writes(tmp_path: Path) -> None:
    """Two servers share the folder: the one rolling over often keeps its newest files, and passes by the other's
    open file, however old, whose rows stay readable."""
    quiet = PredictionLog(tmp_path, flush_seconds=0.01)
    answer = b'{"model":"m","version":"1","predictions":[{"label":"a","class_id":0}]}'
    quiet.record(0.1, b'{"rows":[{"x":1.0}]}', answer, 1, request_id="quiet-1")
    time.sleep(0.1)  # its file is now the oldest in the folder
    busy = PredictionLog(tmp_path, max_file_bytes=5_000, keep_files=2, flush_seconds=0.01)
    for _ in range(20):
        offer(busy, 20)
        time.sleep(0.02)
    quiet.record(0.1, b'{"rows":[{"x":2.0}]}', answer, 1, request_id="quiet-2")
    busy.close()
    quiet.close()
    assert [r["request"] for r in read_log(tmp_path) if r["request"].startswith("quiet")] == ["quiet-1", "quiet-2"]
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) == 3  # busy's newest two, and quiet's
