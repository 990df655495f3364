"""A real server (uvicorn on loopback) under concurrent load while the A/B split changes: no failed request,
and each split's challenger share within the binomial's bounds."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from scipy.stats import binom

from mlpipeline.serving.app import create_app
from mlpipeline.settings import EnvSettings
from tests.serving.conftest import Registry
from tests.serving.test_alias_move import free_port

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("tmp_cwd")]

PHASES = [("ab", 0.2), ("ab", 0.7), ("shadow", 0.5), ("ab", 0.0), ("off", 0.7), ("ab", 0.5)]
PER_PHASE = 300  # requests sent and answered wholly inside one split
CLIENTS = 4
# Chance that a correct server fails the test, per split: the bounds are the binomial's central 1 - ALPHA.
ALPHA = 1e-6


def test_the_split_changes_under_load_with_no_failed_request_and_shares_as_set(
    store: Registry, challenger: str, rows: list
) -> None:
    port = free_port()
    app = create_app(store.holder(), EnvSettings(serve_poll_seconds=0, prediction_log_dir="off"))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    seen: list[tuple[float, float, int, str]] = []  # sent, answered, status, version
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 120  # bounded, loopback only
            while not stop.is_set() and time.monotonic() < deadline:
                sent = time.perf_counter()
                try:
                    response = client.post("/predict", json={"rows": rows[:1]})
                    status, version = response.status_code, response.json().get("version", "")
                except httpx.HTTPError as exc:  # a refused or broken connection is a failed request too
                    status, version = 0, type(exc).__name__
                seen.append((sent, time.perf_counter(), status, version))

    windows: list[tuple[str, float, float, float]] = []  # mode, share, from, to
    loads = [threading.Thread(target=hammer) for _ in range(CLIENTS)]
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        for load in loads:
            load.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as admin:
            for mode, share in PHASES:
                changing = time.perf_counter()
                if windows:
                    windows[-1] = (*windows[-1][:3], changing)
                assert admin.post("/ab", json={"mode": mode, "share": share}).status_code == 200
                begun = time.perf_counter()
                windows.append((mode, share, begun, float("inf")))
                deadline = time.monotonic() + 60
                while sum(sent >= begun for sent, *_ in seen) < PER_PHASE and time.monotonic() < deadline:
                    time.sleep(0.02)
            windows[-1] = (*windows[-1][:3], time.perf_counter())
    finally:
        stop.set()
        for load in loads:
            if load.ident is not None:  # started
                load.join()
        server.should_exit = True
        thread.join(timeout=10)

    failed = [(status, version) for _, _, status, version in seen if status != 200]
    assert not failed, f"{len(failed)} of {len(seen)} requests failed while the split changed: {failed[:5]}"
    for mode, share, begun, ended in windows:
        versions = [version for sent, answered, _, version in seen if sent >= begun and answered <= ended]
        n, k = len(versions), versions.count(challenger)
        assert n >= PER_PHASE // 2, f"{mode} {share}: only {n} requests inside the window"
        assert set(versions) <= {"1", challenger}
        if mode != "ab":
            assert k == 0, f"{mode}: the challenger answered {k} of {n}"
            continue
        low, high = binom.interval(1 - ALPHA, n, share)
        assert low <= k <= high, f"{mode} {share}: challenger answered {k} of {n}, expected {low:.0f}..{high:.0f}"
