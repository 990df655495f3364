"""Slow clients against the real server (uvicorn with the deadline protocol, on a loopback port): a flood of
clients dripping their requests a byte at a time is disconnected, and health checks and predictions are answered
all the while."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from mlpipeline.serving.app import create_app
from mlpipeline.serving.transport import protocol
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import Registry

pytestmark = pytest.mark.usefixtures("tmp_cwd")

SLOW_CLIENTS = 200


@contextlib.contextmanager
def running(store: Registry, header_seconds: float, body_seconds: float) -> Iterator[int]:
    app = create_app(store.holder(), EnvSettings(serve_poll_seconds=0, prediction_log_dir="off"))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        http=protocol(header_seconds, body_seconds),
        limit_concurrency=1000,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def drip(request: bytes, sockets: list[socket.socket], stop: threading.Event) -> None:
    """Send each connection ``request`` one byte every 0.3 s, until told to stop."""
    for i in range(len(request)):
        if stop.wait(0.3):
            return
        for s in sockets:
            with contextlib.suppress(OSError):
                s.sendall(request[i : i + 1])


def closed_by_server(s: socket.socket) -> bool:
    """The server closed it without an answer (a reset counts too); still open after 2 s is False."""
    s.settimeout(2)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("slow", ["headers", "body"])
def test_a_slow_client_flood_is_dropped_and_starves_nobody(store: Registry, rows: list, slow: str) -> None:  # type: ignore[type-arg]
    body = json.dumps({"rows": rows[:1]}).encode()
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    with running(store, header_seconds=1.5, body_seconds=1.5) as port:
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(SLOW_CLIENTS)]
        dripping = head.encode() + body
        if slow == "body":  # the headers at once, then the body a byte at a time
            for s in sockets:
                s.sendall(head.encode())
            dripping = body
        stop = threading.Event()
        thread = threading.Thread(target=drip, args=(dripping, sockets, stop), daemon=True)
        thread.start()
        time.sleep(0.5)
        for _ in range(10):  # meanwhile, health checks and predictions are answered at once
            start = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            health = connection.getresponse()
            assert health.status == 200
            health.read()
            connection.request("POST", "/predict", body, {"content-type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 200, answer.read()
            answer.read()
            connection.close()
            assert time.monotonic() - start < 1.0
        time.sleep(1.5)  # past the deadline: every slow client has been disconnected
        assert all(closed_by_server(s) for s in sockets)
        stop.set()
        thread.join(5)
        for s in sockets:
            s.close()


def test_blank_lines_on_a_kept_alive_connection_do_not_keep_it_open(store: Registry) -> None:
    """Blank lines between requests are allowed by HTTP and reset uvicorn's idle timer; the next request's
    headers are still due within the deadline of the last answer. Pipelined requests are answered, in order."""
    with running(store, header_seconds=1.0, body_seconds=1.0) as port:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = b""
        s.settimeout(5)
        while answers.count(b"HTTP/1.1 200") < 2:
            answers += s.recv(4096)
        assert answers.index(b'"ok"') < answers.index(b'"ready"')
        start = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - start < 5:
                s.sendall(b"\r\n")
                time.sleep(0.3)
        assert time.monotonic() - start < 3, "kept open by blank lines"
        assert closed_by_server(s)
        s.close()
