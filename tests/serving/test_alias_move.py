"""A real server process-like setup (uvicorn on loopback) keeps answering while the champion alias moves."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from mlpipeline.io import registry
from mlpipeline.serving.app import create_app
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import NAME, Registry

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("tmp_cwd")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_alias_move_is_picked_up_with_no_failed_request(store: Registry, rows: list) -> None:
    holder = store.holder()
    assert holder.current is not None
    before = holder.current.version
    holder.watch(0.2)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(holder, EnvSettings(serve_poll_seconds=0.2)), port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60  # bounded, loopback only
            while not stop.is_set() and time.monotonic() < deadline:
                response = client.post("/predict", json={"rows": rows[:2]})
                seen.append((response.status_code, response.json().get("version", "")))

    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        load = threading.Thread(target=hammer)
        load.start()
        time.sleep(0.5)
        new = store.register(seed=3)
        registry.promote(NAME, new, previous=before)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not seen or seen[-1][1] != new):
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        load.join()
    finally:
        holder.stop()
        server.should_exit = True
        thread.join(timeout=10)
        registry.promote(NAME, before, previous=None)  # leave the shared store as other tests expect it

    statuses = {status for status, _ in seen}
    versions = [version for _, version in seen]
    assert statuses == {200}, f"failed requests during the move: {statuses}"
    assert versions[0] == before
    assert versions[-1] == new
    switch = versions.index(new)
    assert set(versions[switch:]) == {new}, "answers went back to the old version"
    assert len(seen) > 20
