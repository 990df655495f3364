"""The prediction log: every served prediction (inputs, output, model version, latency, time), kept off the
request path.

A request only appends one record to a bounded in-memory queue (``put_nowait``: it never waits and never fails;
when the queue is full the record is dropped and counted). One writer thread wakes a few times a second and
appends JSON Lines, one line per request, to ``<dir>/predictions-<UTC start>-<pid>.jsonl``::

    {"time": "2026-12-01T17:50:00.123456Z", "request": "4711-12", "latency_ms": 0.31,
     "body": {"rows": [{"sepal_length_cm": 5.1, ...}]},
     "response": {"model": "iris-classifier", "version": "3", "predictions": [{"label": "setosa", ...}]}}

The request's body and the server's answer are logged as the JSON bytes they already are (the body was validated
before it is logged), so the writer serializes nothing: it shares the interpreter lock with the server, and its
work must stay small. :func:`read_log` gives one record per row.

Files roll over at ``max_file_bytes``; only the newest ``keep_files`` are kept, so the log's size is bounded.
``sample`` (0 to 1) keeps that share of requests. A failing disk never reaches a request: the writer counts the
lost records and warns once. The counts (written, dropped, sampled out, failed) are in the server's /metrics.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PREFIX = "predictions-"
BATCH = 256  # requests written per write call, at most
YIELD_EVERY = 16  # requests formatted between two hand-overs of the interpreter lock


@dataclass
class LogStats:
    """What happened to each record offered to the log (rows for written/failed, requests for the others)."""

    written: int = 0
    failed: int = 0
    dropped: int = 0
    sampled_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class PredictionLog:
    """Append served predictions to JSON Lines files in ``directory`` from a background thread."""

    def __init__(
        self,
        directory: Path,
        sample: float = 1.0,
        queue_size: int = 100_000,
        max_file_bytes: int = 64 << 20,
        keep_files: int = 16,
        flush_seconds: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        self.directory, self.sample = directory, sample
        self.max_file_bytes, self.keep_files, self.flush_seconds = max_file_bytes, keep_files, flush_seconds
        self.stats = LogStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._rng = rng or random.Random()
        self._numbers = itertools.count(1)  # next() on it is atomic: safe from any thread
        self._file: Any = None
        self._warned = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, latency_ms: float, body: bytes, response: bytes, rows: int) -> None:
        """Offer one request (its JSON body, the JSON answer, its row count) to the log; costs microseconds,
        never blocks, never raises."""
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            self.stats.add(sampled_out=1)
            return
        try:
            self._queue.put_nowait((time.time(), next(self._numbers), latency_ms, body, response, rows))
        except queue.Full:
            self.stats.add(dropped=1)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._stop.set()
        self._thread.join(timeout)

    # ---- the writer thread ----

    def _run(self) -> None:
        """Wake every ``flush_seconds`` and write what came in, a batch at a time. The writer never waits on the
        queue itself: a request's append then wakes nobody, and the server keeps the interpreter lock."""
        pid = os.getpid()
        while True:
            stopping = self._stop.wait(self.flush_seconds)
            while batch := self._take(BATCH):
                self._write(batch, pid)
                time.sleep(0)  # let the server answer between batches
            if stopping:
                if self._file is not None:
                    self._file.close()
                return

    def _take(self, most: int) -> list[Any]:
        batch: list[Any] = []
        with contextlib.suppress(queue.Empty):
            while len(batch) < most:
                batch.append(self._queue.get_nowait())
        return batch

    def _write(self, records: list[Any], pid: int) -> None:
        parts = []
        rows_total = 0
        for stamp, number, latency, body, response, rows in records:
            when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            head = f'{{"time":"{when}","request":"{pid}-{number}","latency_ms":{latency:.3f},"body":'
            # JSON may hold line breaks only as whitespace between tokens: one request stays one line.
            parts += [head.encode(), body.replace(b"\n", b" ").replace(b"\r", b" "), b',"response":', response, b"}\n"]
            rows_total += rows
            if number % YIELD_EVERY == 0:  # hand the interpreter lock to the server now and then: a thread that
                time.sleep(0)  # wants it would otherwise wait up to the switch interval (5 ms): the server's p99
        data = b"".join(parts)
        try:
            handle = self._current(pid)
            handle.write(data)
            handle.flush()
        except OSError as exc:
            self.stats.add(failed=rows_total)
            self._file = None
            if not self._warned:
                self._warned = True
                logger.warning("prediction log: cannot write to %s (%s); predictions are served, not logged",
                               self.directory, exc)  # fmt: skip
            return
        self.stats.add(written=rows_total)

    def _current(self, pid: int) -> Any:
        """The open file, rolled over when it reached max_file_bytes; old files beyond keep_files removed."""
        if self._file is not None and self._file.tell() < self.max_file_bytes:
            return self._file
        if self._file is not None:
            self._file.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self._file = (self.directory / f"{PREFIX}{stamp}-{pid}.jsonl").open("ab")
        for old in sorted(self.directory.glob(f"{PREFIX}*.jsonl"))[: -self.keep_files]:
            old.unlink(missing_ok=True)
        return self._file


def read_log(directory: Path) -> list[dict[str, Any]]:
    """Every logged row, oldest file first, as ``{time, request, model, version, latency_ms, inputs, output}``."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{PREFIX}*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    logged = json.loads(line)
                    answer = logged["response"]
                    head = {key: logged[key] for key in ("time", "request", "latency_ms")}
                    head.update(model=answer["model"], version=answer["version"])
                    pairs = zip(logged["body"]["rows"], answer["predictions"], strict=True)
                    rows.extend({**head, "inputs": i, "output": o} for i, o in pairs)
    return rows
