"""A/B and shadow serving: which version answers a request, and the challenger's work off the request path.

- ``off`` (the default): the champion answers everything; nothing here runs on the request path.
- ``ab``: a share of requests is answered by the challenger. A request carrying the key header (e.g.
  ``X-Request-Key: user-42``) is sticky: the key is hashed (keyed BLAKE2b, ``MLPIPELINE_SERVE_AB_SALT``) to a point
  in [0, 1) and goes to the challenger when that point is below the share, so the same key meets the same version
  in every process and after restarts, and raising the share only moves keys from the champion to the challenger.
  A request without a key draws its point at random.
- ``shadow``: the champion answers; for the same share of requests the challenger scores the same rows in a
  background thread (a bounded queue: when it is full the request is not scored, and that is counted), and its
  answer goes to the prediction log with the role ``shadow``.

The split is one immutable value that ``POST /ab`` replaces whole, so a request reads either the old split or
the new one, never half of each: changing it costs no request.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import queue
import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

logger = logging.getLogger(__name__)

Mode = Literal["off", "ab", "shadow"]
Role = Literal["champion", "challenger", "shadow"]


@dataclass(frozen=True)
class Split:
    """How traffic is shared: the mode and the challenger's share (0 to 1) of requests."""

    mode: Mode = "off"
    share: float = 0.0


def bucket(key: str, salt: bytes = b"") -> float:
    """The key's point in [0, 1): the same key and salt give the same point everywhere, always."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=salt).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Router:
    """Decides, per request, whether the challenger takes it (answers in ``ab``, scores in ``shadow``)."""

    def __init__(self, split: Split, salt: str = "", rng: random.Random | None = None) -> None:
        self.split = split  # replaced whole (never mutated), so a request reads one consistent split
        self._salt = salt.encode()
        self._random = (rng or random.Random()).random

    def takes(self, split: Split, key: str | None) -> bool:
        """True when the challenger takes this request under ``split``: sticky by ``key``, else at random."""
        point = bucket(key, self._salt) if key else self._random()
        return point < split.share


class RequestIds:
    """Request ids unique across processes and restarts: a random prefix and a counter (atomic under the GIL)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._numbers = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._numbers)}"


@dataclass(slots=True)
class _Answered:
    rows: int
    answers: list[tuple[str, bytes]]  # (role, the answer's JSON): the answer sent, then a shadow's if any
    labelled: set[int] = field(default_factory=set)


Feedback = Literal["stored", "unknown_request", "row_out_of_range", "already_labelled"]


class RecentAnswers:
    """The answers to the last ``capacity`` rows served, by request id, so that feedback can be checked (is
    this a request we answered, does the row exist, was it labelled already) and scored per version.

    Adding costs a dictionary insert under a lock: the answer is kept as the JSON bytes already sent and only
    parsed when a label for it arrives.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[str, _Answered] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def add(self, request_id: str, rows: int, role: str, answer: bytes) -> None:
        with self._lock:
            self._answers[request_id] = _Answered(rows, [(role, answer)])
            self._rows += rows
            while self._rows > self.capacity and len(self._answers) > 1:
                self._rows -= self._answers.popitem(last=False)[1].rows

    def restore(self, answers: list[tuple[str, str, int, bytes]], labelled: set[tuple[str, int]]) -> None:
        """Remember answers an earlier process gave (``(request id, role, rows, answer)``, oldest first, shadow
        answers after the answer they shadowed) and which of their rows were labelled already."""
        with self._lock:
            known = self._answers
            for request_id, role, rows, answer in answers:
                if role != "shadow":
                    known[request_id] = _Answered(rows, [(role, answer)])
                    self._rows += rows
                elif (shadowed := known.get(request_id)) is not None:
                    shadowed.answers.append(("shadow", answer))
            while self._rows > self.capacity and len(known) > 1:
                self._rows -= known.popitem(last=False)[1].rows
            for request_id, row in labelled:
                if (answered := known.get(request_id)) is not None:
                    answered.labelled.add(row)

    def __len__(self) -> int:
        return len(self._answers)

    def add_shadow(self, request_id: str, answer: bytes) -> None:
        """The challenger's answer to a request the champion answered (if that is still remembered)."""
        with self._lock:
            known = self._answers.get(request_id)
            if known is not None:
                known.answers.append(("shadow", answer))

    def label(self, request_id: str, row: int) -> tuple[Feedback, list[tuple[str, bytes]]]:
        """Mark ``row`` of ``request_id`` labelled; returns the verdict and, when stored, the answers to score."""
        with self._lock:
            known = self._answers.get(request_id)
            if known is None:
                return "unknown_request", []
            if row >= known.rows:
                return "row_out_of_range", []
            if row in known.labelled:
                return "already_labelled", []
            known.labelled.add(row)
            return "stored", list(known.answers)

    def unlabel(self, request_id: str, row: int) -> None:
        """Undo :meth:`label` (the feedback could not be stored: the client may send it again)."""
        with self._lock:
            known = self._answers.get(request_id)
            if known is not None:
                known.labelled.discard(row)


@dataclass
class ShadowStats:
    """Shadow requests: scored by the challenger, dropped (queue full) or failed (the challenger raised)."""

    scored: int = 0
    dropped: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


class ShadowScorer:
    """Runs ``score(job)`` for shadow requests in one background thread, from a bounded queue.

    :meth:`offer` never waits: when the challenger falls behind, the request is not shadowed and is counted as
    dropped, so the champion's answers never wait for the challenger.
    """

    def __init__(self, score: Callable[[Any], None], queue_size: int) -> None:
        self.stats = ShadowStats()
        self._score = score
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def offer(self, job: Any) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.add("dropped")

    def close(self, timeout: float = 10.0) -> None:
        """Score what is queued, then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._score(job)
            except Exception as exc:  # a failing challenger costs its shadow answers, never the server
                self.stats.add("failed")
                if not self._warned:
                    self._warned = True
                    logger.warning("shadow scoring failed (counted in /metrics; champion unaffected): %s", exc)
                continue
            self.stats.add("scored")
