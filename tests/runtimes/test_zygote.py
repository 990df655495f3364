"""The pre-imported stage worker: a stage run through it behaves as a fresh process of the caller's.

These tests run bin/stage in a tiny stand-in project whose ``mlpipeline.stages`` reports what it sees (argv, cwd,
an environment variable, whether the worker's preloaded module is there), so they exercise the real client,
worker, monitor and child in seconds. The real pipeline through the worker is in tests/integration.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ZYGOTE = REPO / "src" / "mlpipeline" / "runtimes" / "zygote.py"

STAGE = """
import os, sys, time
from pathlib import Path
args = sys.argv[1:]
Path("pid").write_text(str(os.getpid()))
print(f"VERSION 1 argv={args} cwd={os.getcwd()} color={os.environ.get('COLOR')} "
      f"preloaded={'decimal' in sys.modules}", flush=True)
if args[0] == "sleep":
    try:
        print("sleeping", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
if args[0] == "die":
    os.kill(os.getpid(), 9)
sys.exit(int(args[1]) if len(args) > 1 else 0)
"""


def _project(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "stage").write_text((REPO / "bin" / "stage").read_text())
    package = root / "src" / "mlpipeline"
    (package / "stages").mkdir(parents=True)
    (package / "runtimes").mkdir()
    (package / "__init__.py").write_text("")
    (package / "stages" / "__init__.py").write_text("")
    (package / "stages" / "__main__.py").write_text(STAGE)
    (package / "runtimes" / "zygote.py").write_text(ZYGOTE.read_text())
    return root


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "PYTHON"))}
    return {**env, "MLPIPELINE_PYTHON": sys.executable, **extra}


def _stage(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "bin/stage", *args], cwd=root, env=_env(**env), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Path]:
    """A stand-in project with its worker running (preloading one small module, ``decimal``)."""
    root = _project(tmp_path / "p")
    process = subprocess.Popen(
        [sys.executable, "-P", str(ZYGOTE), "start", "--foreground", "--root", str(root), "--preload", "decimal"],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    assert "ready" in process.stderr.readline()
    yield root
    process.terminate()
    process.wait(timeout=10)


def test_without_a_worker_the_stage_is_a_plain_process(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    done = _stage(root, "ingest", "3", COLOR="blue")
    assert done.returncode == 3
    assert "preloaded=False" in done.stdout
    assert f"argv=['ingest', '3'] cwd={root} color=blue" in done.stdout


def test_a_stage_in_the_worker_sees_the_callers_argv_cwd_env_and_stdio_and_gives_its_exit_code(
    worker: Path,
) -> None:
    done = _stage(worker, "train", "5", COLOR="red")
    assert done.returncode == 5, done.stderr
    assert "preloaded=True" in done.stdout  # it ran in a fork of the worker
    assert f"argv=['train', '5'] cwd={worker} color=red" in done.stdout
    assert _stage(worker, "train").returncode == 0


def test_an_edited_stage_module_is_what_runs(worker: Path) -> None:
    assert "VERSION 1" in _stage(worker, "train").stdout
    module = worker / "src" / "mlpipeline" / "stages" / "__main__.py"
    module.write_text(module.read_text().replace("VERSION 1", "VERSION 22"))  # another size: a new .pyc
    done = _stage(worker, "train")
    assert "VERSION 22" in done.stdout
    assert "preloaded=True" in done.stdout


def test_the_socket_is_reachable_by_its_user_only(worker: Path) -> None:
    folder = worker / ".mlpipeline" / "zygote"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "zygote.sock").stat().st_mode) & 0o077 == 0


def test_an_environment_read_at_import_time_that_differs_gets_a_plain_process(worker: Path) -> None:
    done = _stage(worker, "train", OMP_NUM_THREADS="1")
    assert done.returncode == 0
    assert "preloaded=False" in done.stdout


def test_ctrl_c_reaches_the_stage(worker: Path) -> None:
    client = subprocess.Popen(["sh", "bin/stage", "sleep"], cwd=worker, env=_env(), stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    assert "preloaded=True" in client.stdout.readline()
    assert client.stdout.readline() == "sleeping\n"
    client.send_signal(signal.SIGINT)
    assert client.wait(timeout=20) == 130
    assert "interrupted" in client.stdout.read()


def test_a_killed_client_takes_its_stage_with_it(worker: Path) -> None:
    client = subprocess.Popen(["sh", "bin/stage", "sleep"], cwd=worker, env=_env(), stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    client.stdout.readline()
    stage_pid = int((worker / "pid").read_text())
    client.kill()
    client.wait(timeout=10)
    for _ in range(100):
        try:
            os.kill(stage_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("the stage outlived its killed client")


def test_a_stage_killed_by_a_signal_kills_its_client_with_the_same_signal(worker: Path) -> None:
    done = _stage(worker, "die")
    assert done.returncode == -signal.SIGKILL


def test_stop_ends_the_worker_and_stages_run_plain_again(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    command = [sys.executable, "-P", str(ZYGOTE)]
    subprocess.run([*command, "start", "--root", str(root), "--preload", "decimal"], env=_env(), check=True)
    for _ in range(100):
        if subprocess.run([*command, "status", "--root", str(root)], env=_env(), capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    assert "preloaded=True" in _stage(root, "train").stdout
    subprocess.run([*command, "stop", "--root", str(root)], env=_env(), check=True)
    assert not (root / ".mlpipeline" / "zygote" / "zygote.sock").exists()
    assert "preloaded=False" in _stage(root, "train").stdout
