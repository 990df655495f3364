"""Slow and idle clients bounded at the connection: uvicorn's HTTP protocol with a deadline per request.

uvicorn times out a connection only while it sits idle *between* requests (``timeout_keep_alive``): a client
that connects and sends nothing, or sends its request a byte at a time, holds its connection for as long as it
likes, and enough of them hold the server (slowloris). Here every request must arrive whole in time: its headers
within ``header_seconds`` of the connection opening (or of the request's first byte on a kept-alive connection),
its body within ``body_seconds`` of the headers, and the next request on a kept-alive connection within
``header_seconds`` of the last answer. A client that misses its deadline is disconnected (logged at debug); the
rest are served as before. The connection limit is uvicorn's own ``limit_concurrency``
(beyond it, new requests get a 503).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)


class DeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within their deadlines (see the module)."""

    header_seconds = 10.0
    body_seconds = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.get_protocol() is not self:  # upgraded (a websocket): no longer an HTTP request
            return
        logger.debug("disconnected %s: its request did not arrive in time", self.client)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds)  # a connection that never sends a request

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.pipeline:  # queued behind a running request, reading paused: its body is timed once it starts
            self._disarm()
        else:
            self._arm(self.body_seconds)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self._deadline is not None:
            return
        if not self.cycle.response_complete:  # a pipelined request has just started: its body is due
            if self.cycle.more_body:
                self._arm(self.body_seconds)
        else:  # the next request's headers are due (blank lines reset uvicorn's keep-alive timer, not this one)
            self._arm(self.header_seconds)


def protocol(header_seconds: float, body_seconds: float) -> type[DeadlineProtocol]:
    """A DeadlineProtocol class with these deadlines (uvicorn takes a class and makes one per connection)."""
    return type("ServeProtocol", (DeadlineProtocol,), {"header_seconds": header_seconds, "body_seconds": body_seconds})
