"""Shared fixtures: tiny data, an isolated working directory, an MLflow store under tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as cwd, with the committed params.yaml and contracts, MLflow in tmp_path."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "contracts", tmp_path / "contracts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLPIPELINE_RUNTIME", raising=False)
    for name, value in (("MLFLOW_CONFIGURE_LOGGING", "false"), ("MLFLOW_DISABLE_TELEMETRY", "true")):
        monkeypatch.setenv(name, value)
    return tmp_path


def uv_path() -> str:
    """The uv that `make setup` uses (on PATH, or installed into the repo's .tools/)."""
    return shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")


def project_env(project: Path) -> dict[str, str]:
    """Environment for running DVC in a copy of the repo: its own code first, the local MLflow store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project / "src")
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t")
    env["GIT_COMMITTER_EMAIL"] = "t@example.com"
    # `make run` in a copy runs stages as plain processes: a stage worker per copy would outlive the test by
    # WORKER_IDLE. The worker's own tests start it (tests/integration/test_zygote.py).
    env["WORKER"] = "0"
    return env


def copy_project(dest: Path) -> Path:
    """Copy the repo's files (tracked, and new ones git does not ignore) into a fresh git repo at ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    env = project_env(dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return dest


class Project:
    """A copy of the repo to run the real pipeline in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = project_env(root)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def repro(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("dvc", "repro", *args, check=check)

    def make(self, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``make <targets>`` as a user runs it, with this test run's environment (no install in the copy)."""
        return self.run("make", *targets, f"VENV={VENV_BIN.parent}", f"UV={uv_path()}", check=check)

    def set_param(self, dotted: str, value: object) -> None:
        import yaml

        path = self.root / "params.yaml"
        data = yaml.safe_load(path.read_text())
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def path(self, rel: str) -> Path:
        return self.root / rel


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A fresh copy of the repo (nothing run yet)."""
    return Project(copy_project(tmp_path / "project"))


def in_threads(count: int, target: Callable[..., object], *args: object) -> None:
    """Run ``target(*args)`` in ``count`` threads at once and wait for all of them."""
    import threading

    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
