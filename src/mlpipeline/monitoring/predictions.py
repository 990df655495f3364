"""The prediction log: every served prediction (inputs, output, model version, latency, time), kept off the
request path.

A request only appends one record to a bounded in-memory queue (``put_nowait``: it never waits and never fails;
when the queue is full the record is dropped and counted). One writer thread wakes a few times a second and
appends JSON Lines, one line per request, to ``<dir>/predictions-<UTC start>-<pid>.jsonl``::

    {"time": "2026-12-01T17:50:00.123456Z", "request": "9f3ac2e1-12", "role": "champion", "latency_ms": 0.31,
     "body": {"rows": [{"sepal_length_cm": 5.1, ...}]},
     "response": {"model": "iris-classifier", "version": "3", "request_id": "9f3ac2e1-12", "predictions": [...]}}

``request`` is the id the server gave the answer (``X-Request-Id``); ``role`` says who produced it: the
``champion`` or, in an A/B test, the ``challenger`` (both answered the client), or ``shadow`` (the challenger
scored the same request off the request path; its line carries the challenger's answer, never sent).

The request's body and the server's answer are logged as the JSON bytes they already are (the body was validated
before it is logged), so the writer serializes nothing: it shares the interpreter lock with the server, and its
work must stay small. :func:`read_log` gives one record per row.

Files roll over at ``max_file_bytes``; only the newest ``keep_files`` are kept, so the log's size is bounded
(never deleted: a file another live server still writes, which it holds a lock on).
With ``database_url`` (the team stack's PostgreSQL) the same records go to the table ``mlpipeline_predictions``
instead (body and answer as ``jsonb``), created on first use; rows older than ``keep_days`` are deleted.
``sample`` (0 to 1) keeps that share of requests. A failing disk never reaches a request: the writer counts the
lost records and warns once; a batch the disk cut short is taken back whole, and a full disk neither opens new
files nor deletes old ones (every row counted written stays readable). The counts (written, dropped, sampled out,
failed) are in the server's /metrics.

Labels that arrive later (``POST /feedback``) are kept beside the log by :class:`FeedbackStore`:
``<dir>/feedback-<UTC start>-<pid>.jsonl`` or the table ``mlpipeline_feedback``; :func:`read_feedback` and
:func:`read_feedback_table` read them back.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import queue
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlpipeline.errors import ServiceUnavailableError

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
        database_url: str | None = None,
        keep_days: int = 30,
    ) -> None:
        self.directory, self.sample = directory, sample
        self.max_file_bytes, self.keep_files, self.flush_seconds = max_file_bytes, keep_files, flush_seconds
        self.stats = LogStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._rng = rng or random.Random()
        self._numbers = itertools.count(1)  # next() on it is atomic: safe from any thread
        self._file: Any = None
        self._database_url, self.keep_days = database_url, keep_days
        self._connection: Any = None
        self._pruned = 0.0
        self._warned = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(
        self, latency_ms: float, body: bytes, response: bytes, rows: int, request_id: str = "", role: str = "champion"
    ) -> None:
        """Offer one request (its JSON body, the JSON answer, its row count, the id it was answered with and the
        role of the version that answered) to the log; costs microseconds, never blocks, never raises.

        ``role`` is written into the line as it is: it must be a plain word (champion, challenger, shadow).
        """
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            self.stats.add(sampled_out=1)
            return
        try:
            self._queue.put_nowait(
                (time.time(), next(self._numbers), latency_ms, body, response, rows, request_id, role)
            )
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
        if self._database_url:
            self._insert(records, pid)
            return
        parts = []
        rows_total = 0
        for stamp, number, latency, body, response, rows, request_id, role in records:
            when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            request = request_id or f"{pid}-{number}"
            head = f'{{"time":"{when}","request":"{request}","role":"{role}","latency_ms":{latency:.3f},"body":'
            # JSON may hold line breaks only as whitespace between tokens: one request stays one line.
            parts += [head.encode(), body.replace(b"\n", b" ").replace(b"\r", b" "), b',"response":', response, b"}\n"]
            rows_total += rows
            if number % YIELD_EVERY == 0:  # hand the interpreter lock to the server now and then: a thread that
                time.sleep(0)  # wants it would otherwise wait up to the switch interval (5 ms): the server's p99
        try:
            _append_whole(self._current(pid), b"".join(parts))
        except OSError as exc:  # the file stays open: a full disk opens no new (empty) files, deletes nothing
            self._lost(rows_total, str(self.directory), str(exc))
            return
        self.stats.add(written=rows_total)

    def _lost(self, rows: int, where: str, why: str) -> None:
        self.stats.add(failed=rows)
        if not self._warned:
            self._warned = True
            logger.warning("prediction log: cannot write to %s (%s); predictions are served, not logged", where, why)

    def _insert(self, records: list[Any], pid: int) -> None:
        """The records into PostgreSQL, one transaction a batch; a failure costs this batch, and the next one
        connects again."""
        import psycopg2
        from psycopg2.extras import execute_values

        values = [
            (
                datetime.fromtimestamp(stamp, UTC),
                request_id or f"{pid}-{number}",
                role,
                latency,
                body.decode(),
                response.decode(),
            )
            for stamp, number, latency, body, response, _, request_id, role in records
        ]
        rows_total = sum(record[5] for record in records)
        try:
            if self._connection is None:
                self._connection = psycopg2.connect(self._database_url, connect_timeout=5)
                with self._connection, self._connection.cursor() as cursor:
                    cursor.execute(TABLE)
            with self._connection, self._connection.cursor() as cursor:
                execute_values(cursor, INSERT, values, template="(%s, %s, %s, %s, %s::jsonb, %s::jsonb)", page_size=500)
                if time.monotonic() - self._pruned > PRUNE_SECONDS:
                    cursor.execute(PRUNE, (self.keep_days,))
                    self._pruned = time.monotonic()
        except psycopg2.Error as exc:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
            self._lost(rows_total, "PostgreSQL (MLPIPELINE_PREDICTION_LOG_URL)", str(exc).strip().splitlines()[0])
            return
        self.stats.add(written=rows_total)

    def _current(self, pid: int) -> Any:
        """The open file, rolled over when it holds max_file_bytes of rows; then the oldest files beyond
        keep_files that hold rows are removed (retention by the data kept, never by attempts to write)."""
        if self._file is not None and os.fstat(self._file.fileno()).st_size < self.max_file_bytes:
            return self._file
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        opened = (self.directory / f"{PREFIX}{stamp}-{pid}.jsonl").open("ab", buffering=0)
        fcntl.flock(opened, fcntl.LOCK_SH)  # held while it is written: another server's retention passes it by
        if self._file is not None:
            self._file.close()
        self._file = opened
        kept = [f for f in sorted(self.directory.glob(f"{PREFIX}*.jsonl")) if f.name != Path(opened.name).name]
        for old in [f for f in kept if _size(f)][: -(self.keep_files - 1) or None]:
            _unlink_unless_written(old)
        return self._file


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed meanwhile (another server's retention)
        return 0


def _unlink_unless_written(path: Path) -> None:
    """Remove a log file, unless a live server still writes it (it holds a lock on it)."""
    try:
        with path.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
    except BlockingIOError:
        return
    except FileNotFoundError:
        return


def _append_whole(handle: Any, data: bytes) -> None:
    """Append ``data`` to the unbuffered file ``handle``, or nothing of it: a write the disk cut short is taken
    back, so no half line is left for the next one to be glued to."""
    start = os.fstat(handle.fileno()).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[handle.write(view) :]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(handle.fileno(), start)
        raise


# A table made before roles were logged gains the column (its rows were all the champion's).
TABLE = """CREATE TABLE IF NOT EXISTS mlpipeline_predictions (
    id bigserial PRIMARY KEY, time timestamptz NOT NULL, request text NOT NULL, latency_ms real NOT NULL,
    body jsonb NOT NULL, response jsonb NOT NULL);
ALTER TABLE mlpipeline_predictions ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'champion';
CREATE INDEX IF NOT EXISTS mlpipeline_predictions_time ON mlpipeline_predictions (time)"""
INSERT = "INSERT INTO mlpipeline_predictions (time, request, role, latency_ms, body, response) VALUES %s"
PRUNE = "DELETE FROM mlpipeline_predictions WHERE time < now() - make_interval(days => %s)"
PRUNE_SECONDS = 60.0


def _rows_of(head: dict[str, Any], body: dict[str, Any], answer: dict[str, Any]) -> list[dict[str, Any]]:
    head = {**head, "model": answer["model"], "version": answer["version"]}
    pairs = enumerate(zip(body["rows"], answer["predictions"], strict=True))
    return [{**head, "row": n, "inputs": i, "output": o} for n, (i, o) in pairs]


def read_table(database_url: str) -> list[dict[str, Any]]:
    """Every logged row in PostgreSQL, oldest first, as :func:`read_log` gives them."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(TABLE)  # a table from before roles were logged is read as the champion's
        cursor.execute("SELECT time, request, role, latency_ms, body, response FROM mlpipeline_predictions ORDER BY id")
        fetched = cursor.fetchall()
    connection.close()
    return _table_rows(fetched)


def _table_rows(fetched: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for when, request, role, latency, body, answer in fetched:
        head = {"time": when.isoformat(), "request": request, "role": role, "latency_ms": latency}
        rows.extend(_rows_of(head, body, answer))
    return rows


def _line_rows(logged: dict[str, Any]) -> list[dict[str, Any]]:
    head = {key: logged[key] for key in ("time", "request", "latency_ms")}
    head["role"] = logged.get("role", "champion")
    return _rows_of(head, logged["body"], logged["response"])


def _lines(path: Path, newest_first: bool = False) -> Iterator[dict[str, Any]]:
    """The requests logged in one file, in order (or newest first), each parsed only when it is reached. A line
    cut short (the server was killed while writing: only then can a line lack its end) is skipped with a warning
    instead of failing every reader of the log."""
    lines = path.read_bytes().splitlines()
    torn = 0
    for line in reversed(lines) if newest_first else lines:
        if not line.strip():
            continue
        try:
            logged = json.loads(line)
        except ValueError:
            torn += 1
            continue
        yield logged
    if torn:
        logger.warning("prediction log: skipped %d unreadable line(s) in %s (cut short by a crash?)", torn, path)


def read_log(directory: Path) -> list[dict[str, Any]]:
    """Every logged row, oldest file first, as ``{time, request, role, model, version, latency_ms, row, inputs,
    output}`` (``row``: its place in the request's batch; lines written before roles were logged: champion)."""
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{PREFIX}*.jsonl")):
        for logged in _lines(path):
            rows.extend(_line_rows(logged))
    return rows


def newest_rows(
    directory: Path, model: str, version: str, rows: int, database_url: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``rows`` logged rows ``model`` v``version`` answered, oldest first, as :func:`read_log` gives
    them. The log is read from its newest end and only as far back as needed: a month of log costs no more than
    the window (in PostgreSQL, one indexed scan backwards)."""
    if database_url:
        import psycopg2

        with psycopg2.connect(database_url, connect_timeout=5) as connection, connection.cursor() as cursor:
            cursor.execute(TABLE)
            cursor.execute(  # each request answered at least one row: `rows` requests are enough
                "SELECT time, request, role, latency_ms, body, response FROM mlpipeline_predictions "
                "WHERE response->>'model' = %s AND response->>'version' = %s ORDER BY id DESC LIMIT %s",
                (model, version, rows),
            )
            fetched = cursor.fetchall()
        connection.close()
        return _table_rows(reversed(fetched))[-rows:]
    found: list[list[dict[str, Any]]] = []
    counted = 0
    for path in sorted(directory.glob(f"{PREFIX}*.jsonl"), reverse=True):
        for logged in _lines(path, newest_first=True):  # parsed only back to the window's first row
            answer = logged["response"]
            if answer.get("model") == model and str(answer.get("version")) == version:
                found.append(_line_rows(logged))
                counted += len(found[-1])
            if counted >= rows:
                break
        if counted >= rows:
            break
    return [row for request in reversed(found) for row in request][-rows:]


# One answer as the server remembers it for feedback: (request id, role, rows, the answer's JSON).
Answer = tuple[str, str, int, bytes]


def last_answers(
    directory: Path, rows: int, database_url: str | None = None
) -> tuple[list[Answer], set[tuple[str, int]]]:
    """The newest logged answers covering at least ``rows`` answered rows, oldest first, with the shadow answers
    among them; and which ``(request, row)`` of them were labelled already. A restarted server remembers them, so
    labels for requests an earlier process answered are still taken (and none twice).
    """
    if database_url:
        return _last_answers_table(database_url, rows)
    logged = (
        answer for path in sorted(directory.glob(f"{PREFIX}*.jsonl"), reverse=True) for answer in _answers_in(path)
    )
    newest = _newest(logged, rows)
    known = {request for request, *_ in newest}
    labelled = {(f["request"], f["row"]) for f in read_feedback(directory) if f["request"] in known}
    return newest, labelled


# The writer's line: {"time":"...","request":"<id>","role":"<word>","latency_ms":...,"body":<JSON>,"response":<JSON>}
_HEAD = re.compile(rb'\{"time":"[^"]*","request":"([^"\\]*)","role":"([a-z]+)",')
_RESPONSE = b',"response":'


def _answers_in(path: Path) -> Iterator[Answer]:
    """The answers logged in one file, newest first, read lazily from its end. Only the answer of a line is
    parsed (a request's body can be far larger, and the server waits for this at start); a line the fast way
    cannot read (an older layout) is parsed whole, one cut short by a crash is skipped."""
    torn = 0
    for line in reversed(path.read_bytes().splitlines()):
        if not line.strip():
            continue
        head, cut = _HEAD.match(line), line.rfind(_RESPONSE)
        if head is not None and cut > 0 and line.endswith(b"}"):
            raw = line[cut + len(_RESPONSE) : -1]
            with contextlib.suppress(ValueError, TypeError, KeyError):
                yield head[1].decode(), head[2].decode(), len(json.loads(raw)["predictions"]), raw
                continue
        try:
            logged = json.loads(line)
        except ValueError:
            torn += 1
            continue
        answer = logged["response"]
        yield logged["request"], logged.get("role", "champion"), len(answer["predictions"]), json.dumps(answer).encode()
    if torn:
        logger.warning("prediction log: skipped %d unreadable line(s) in %s (cut short by a crash?)", torn, path)


def _newest(logged: Iterable[Answer], rows: int) -> list[Answer]:
    """From answers newest first: enough to cover ``rows`` answered rows, oldest first."""
    newest: list[Answer] = []
    counted = 0
    for answer in logged:
        newest.append(answer)
        counted += 0 if answer[1] == "shadow" else answer[2]  # a shadow answer was never sent: it covers no row
        if counted >= rows:
            break
    newest.reverse()
    return newest


def _last_answers_table(database_url: str, rows: int) -> tuple[list[Answer], set[tuple[str, int]]]:
    import psycopg2

    with psycopg2.connect(database_url, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(TABLE)
        cursor.execute(FEEDBACK_TABLE)
        # Every request answered at least one row: the newest `rows` requests cover the newest `rows` rows.
        cursor.execute(
            "SELECT request, role, response FROM mlpipeline_predictions ORDER BY id DESC LIMIT %s", (2 * rows,)
        )
        fetched = cursor.fetchall()
        answers = ((r, role, len(a["predictions"]), json.dumps(a).encode()) for r, role, a in fetched)
        newest = _newest(answers, rows)
        cursor.execute(
            "SELECT request, row FROM mlpipeline_feedback WHERE request = ANY(%s)", ([r for r, *_ in newest],)
        )
        labelled = {(request, row) for request, row in cursor.fetchall()}
    connection.close()
    return newest, labelled


FEEDBACK_PREFIX = "feedback-"
FEEDBACK_TABLE = """CREATE TABLE IF NOT EXISTS mlpipeline_feedback (
    id bigserial PRIMARY KEY, time timestamptz NOT NULL, request text NOT NULL, row integer NOT NULL,
    label text, value double precision);
CREATE INDEX IF NOT EXISTS mlpipeline_feedback_request ON mlpipeline_feedback (request)"""


class FeedbackStore:
    """Labels (or a regression's true values) for served rows, stored beside the prediction log.

    Feedback is rare and precious, so unlike predictions it is written at once, on the caller's thread, and a
    failure is raised to it (the client is told nothing was stored and can send again): a file in ``directory``
    flushed to disk (``fsync``) before :meth:`write` returns, or one transaction in PostgreSQL.
    """

    def __init__(self, directory: Path, database_url: str | None = None) -> None:
        self.directory, self._database_url = directory, database_url
        self._lock = threading.Lock()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self._path = directory / f"{FEEDBACK_PREFIX}{stamp}-{os.getpid()}.jsonl"

    @property
    def where(self) -> str:
        return "PostgreSQL (table mlpipeline_feedback)" if self._database_url else str(self._path)

    def write(self, items: list[dict[str, Any]]) -> None:
        """Store ``{"request", "row", "label" | "value"}`` items durably, all or none.

        Raises:
            ServiceUnavailableError: the folder or the database cannot take them (the reason, never the URL).
        """
        now = datetime.now(UTC)
        try:
            if self._database_url:
                self._insert(items, now)
            else:
                self._append(items, now)
        except Exception as exc:  # OSError or psycopg2.Error (not imported unless PostgreSQL is used)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceUnavailableError(f"cannot store feedback in {self.where}: {reason}") from exc

    def _append(self, items: list[dict[str, Any]], now: datetime) -> None:
        when = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = "".join(json.dumps({"time": when, **item}) + "\n" for item in items).encode()
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._path.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    def _insert(self, items: list[dict[str, Any]], now: datetime) -> None:
        import psycopg2
        from psycopg2.extras import execute_values

        values = [(now, item["request"], item["row"], item.get("label"), item.get("value")) for item in items]
        connection = psycopg2.connect(self._database_url, connect_timeout=5)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(FEEDBACK_TABLE)
                execute_values(
                    cursor, "INSERT INTO mlpipeline_feedback (time, request, row, label, value) VALUES %s", values
                )
        finally:
            connection.close()


def read_feedback(directory: Path) -> list[dict[str, Any]]:
    """Every stored feedback item, oldest file first, as ``{time, request, row, label | value}``."""
    items: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{FEEDBACK_PREFIX}*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            items.extend(json.loads(line) for line in handle if line.strip())
    return items


def read_feedback_table(database_url: str) -> list[dict[str, Any]]:
    """Every feedback item in PostgreSQL, oldest first, as :func:`read_feedback` gives them."""
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(FEEDBACK_TABLE)
        cursor.execute("SELECT time, request, row, label, value FROM mlpipeline_feedback ORDER BY id")
        fetched = cursor.fetchall()
    connection.close()
    items: list[dict[str, Any]] = []
    for when, request, row, label, value in fetched:
        item: dict[str, Any] = {"time": when.isoformat(), "request": request, "row": row}
        item.update({"label": label} if label is not None else {"value": value})
        items.append(item)
    return items
