"""The prediction log: every served prediction (inputs, output, model version, latency, time), kept off the
request path.

A request only appends one record to a bounded in-memory queue (``put_nowait``: it never waits and never fails;
when the queue is full the record is dropped and counted). One writer thread drains the queue in batches and
appends JSON Lines, one line per predicted row, to ``<dir>/predictions-<UTC start>-<pid>.jsonl``::

    {"time": "2026-12-01T17:50:00.123456Z", "request": "4711-12", "model": "iris-classifier", "version": "3",
     "latency_ms": 0.31, "inputs": {"sepal_length_cm": 5.1, ...}, "output": {"label": "setosa", ...}}

Files roll over at ``max_file_bytes``; only the newest ``keep_files`` are kept, so the log's size is bounded.
``sample`` (0 to 1) keeps that share of requests. A failing disk never reaches a request: the writer counts the
lost records and warns once. The counts (written, dropped, sampled out, failed) are in the server's /metrics.
"""

from __future__ import annotations

import contextlib
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
BATCH = 2_000  # records written per write call, at most
_STOP = object()


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
        flush_seconds: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.directory, self.sample = directory, sample
        self.max_file_bytes, self.keep_files, self.flush_seconds = max_file_bytes, keep_files, flush_seconds
        self.stats = LogStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._rng = rng or random.Random()
        self._requests = 0
        self._file: Any = None
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, model: str, version: str, latency_ms: float, rows: list[Any], outputs: list[Any]) -> None:
        """Offer one request's rows and answers to the log; costs microseconds, never blocks, never raises.

        ``rows`` may be dicts or objects whose ``__dict__`` is the row (the request's own row models): they are
        turned into JSON by the writer thread, not here."""
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            self.stats.add(sampled_out=1)
            return
        self._requests += 1
        try:
            self._queue.put_nowait((time.time(), self._requests, model, version, latency_ms, rows, outputs))
        except queue.Full:
            self.stats.add(dropped=1)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)

    # ---- the writer thread ----

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            try:
                first = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            records = [item for item in batch if item is not _STOP]
            if records:
                self._write(records, pid)
            if stop:
                if self._file is not None:
                    self._file.close()
                return

    def _write(self, records: list[Any], pid: int) -> None:
        lines = []
        rows_total = 0
        for stamp, number, model, version, latency, rows, outputs in records:
            when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            head = {"time": when, "request": f"{pid}-{number}", "model": model, "version": version}
            head["latency_ms"] = round(latency, 3)
            for row, output in zip(rows, outputs, strict=False):
                inputs = row if isinstance(row, dict) else row.__dict__
                lines.append(json.dumps({**head, "inputs": inputs, "output": output}, allow_nan=True) + "\n")
            rows_total += len(rows)
        data = "".join(lines).encode()
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
    """Every logged row, oldest file first (for monitoring and tests)."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{PREFIX}*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows
