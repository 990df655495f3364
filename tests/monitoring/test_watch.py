"""`mlpipeline monitor --every`: a watcher that survives failed checks, retrains once per drift, stops on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlpipeline.errors import ServiceUnavailableError
from mlpipeline.monitoring.monitor import DriftDetectedError, watch
from tests.conftest import REPO, write_default_params


def test_failed_checks_are_logged_and_a_drift_retrains_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    calm = SimpleNamespace(drifted=False, context={"version": "1"})
    outcomes: list[Any] = [
        ServiceUnavailableError("MLflow tracking server is not reachable"),
        calm,
        DriftDetectedError("drift: petal_length_cm", "1"),  # the episode starts: this check may retrain
        DriftDetectedError("drift: petal_length_cm", "1"),  # the same drift: told that v1 is drifting already
        ServiceUnavailableError("down again"),  # not known whether it still drifts: v1 still counts as drifting
        DriftDetectedError("drift: sepal_width_cm", "2"),  # a new champion drifting is a new episode
        calm,
        calm,
    ]
    told: list[str | None] = []

    def check_once(drifting: str | None) -> Any:
        told.append(drifting)
        outcome = outcomes[len(told) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.INFO):
        watch(0.0, check_once, rounds=len(outcomes))
    assert told == [None, None, None, "1", "1", "1", "2", None]
    assert caplog.text.count("MLflow tracking server is not reachable; next check in 0 s") == 1
    assert caplog.text.count("drift: petal_length_cm") == 2


def test_setting_stop_ends_the_wait_between_checks_at_once() -> None:
    stop = threading.Event()
    checks: list[float] = []

    def check_once(_: str | None) -> Any:
        checks.append(time.monotonic())
        return SimpleNamespace(drifted=False, context={})

    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    watch(3600.0, check_once, stop=stop)
    assert len(checks) == 1
    assert time.monotonic() - started < 5  # not an hour: the wait is cut short


def test_the_cli_watcher_keeps_going_without_a_champion_and_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    write_default_params(tmp_path / "params.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_"))}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", PYTHONPATH=str(REPO / "src"))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "mlpipeline", "monitor", "--every", "0.2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    killer = threading.Timer(120, os.killpg, (watcher.pid, signal.SIGKILL))  # a hung watcher fails, not hangs
    killer.start()
    try:
        lines: list[str] = []
        assert watcher.stderr is not None
        for line in watcher.stderr:
            lines.append(line)
            if sum("has no champion to monitor" in seen for seen in lines) == 2:
                break
        watcher.send_signal(signal.SIGTERM)
        rest = watcher.communicate(timeout=60)[1]
    finally:
        killer.cancel()
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
    said = "".join(lines) + rest
    assert watcher.returncode == 0, said
    assert "'iris-classifier' has no champion to monitor: run the pipeline first (`make run`); next check in" in said
    assert "stopped watching for drift" in said
    assert "Traceback" not in said
