"""Rebuild what produced a model version and check that the result matches what was recorded.

The model's commit is checked out into a temporary git worktree that shares this project's DVC cache; the
data is restored from the cache where it can be, the whole pipeline is run again (``dvc repro --force``) with
an MLflow store of its own (a reproduction must not register models), and the data hashes and test metrics
are compared with the version's lineage tags and its run's metrics.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlpipeline.errors import MlpipelineError
from mlpipeline.io.lineage import describe, git, lock_hashes

logger = logging.getLogger(__name__)

DATA_KEYS = ("data.raw.md5", "data.train.md5", "data.test.md5")


class Comparison(BaseModel):
    """One recorded value against its reproduction."""

    name: str
    recorded: str | float | None
    reproduced: str | float | None

    @property
    def match(self) -> bool:
        return self.recorded is not None and self.recorded == self.reproduced


class ReproduceReport(BaseModel):
    """The outcome of `mlpipeline reproduce`."""

    model: str
    version: str
    commit: str
    dirty_when_trained: bool
    environment_changed: bool
    remote_note: str | None = None
    comparisons: list[Comparison]

    @property
    def match(self) -> bool:
        return all(c.match for c in self.comparisons)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise MlpipelineError(f"reproduction step `{' '.join(cmd)}` failed:\n{tail}")


def _pull_missing(tree: Path, env: dict[str, str]) -> str | None:
    """Fetch what the local cache lacks from the DVC remote, when one is configured; a note when that failed."""
    remotes = subprocess.run(["dvc", "remote", "list"], cwd=tree, env=env, capture_output=True, text=True, check=False)
    if not remotes.stdout.strip():
        return None
    done = subprocess.run(
        ["dvc", "pull", "--allow-missing"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return "could not pull from the DVC remote; rebuilt from the local cache and the pipeline only"
    return None


def reproduce(name: str, ref: str) -> ReproduceReport:
    """Rebuild ``name``@``ref`` from its commit in a temporary worktree and compare."""
    info = describe(name, ref)
    tags: dict[str, str] = info["tags"]
    commit = tags.get("git.commit")
    root = git("rev-parse", "--show-toplevel")
    if not commit or not root:
        raise MlpipelineError(f"{name} v{info['version']} has no git.commit lineage tag, or this is not a git checkout")
    if git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise MlpipelineError(f"commit {commit[:12]} of {name} v{info['version']} is not in this repository: git fetch")
    cache = Path(root) / ".dvc" / "cache"
    work = Path(tempfile.mkdtemp(prefix="mlpipeline-reproduce-"))
    tree = work / "tree"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_TRACKING_URI"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(tree / "src")  # the commit's code, not the current checkout's
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    try:
        _run(["git", "worktree", "add", "--detach", "--force", str(tree), commit], Path(root), env)
        local_config = Path(root) / ".dvc" / "config.local"
        if local_config.is_file():  # remote credentials (git-ignored, so not in the worktree); deleted with it
            shutil.copy2(local_config, tree / ".dvc" / "config.local")
        _run(["dvc", "cache", "dir", "--local", str(cache)], tree, env)
        _run(["dvc", "checkout", "--allow-missing"], tree, env)
        remote_note = _pull_missing(tree, env)
        logger.info("rebuilding %s v%s from commit %s in %s", name, info["version"], commit[:12], tree)
        _run(["dvc", "repro", "--force"], tree, env)
        reproduced = lock_hashes(tree / "dvc.lock")
        metrics = json.loads((tree / "metrics" / "metrics.json").read_text(encoding="utf-8"))
        changed = git("diff", "--quiet", commit, "--", "uv.lock", cwd=Path(root)) is None
    finally:
        git("worktree", "remove", "--force", str(tree), cwd=Path(root))
        shutil.rmtree(work, ignore_errors=True)

    comparisons = [Comparison(name=key, recorded=tags.get(key), reproduced=reproduced.get(key)) for key in DATA_KEYS]
    recorded_metrics: dict[str, Any] = info["metrics"]
    for key, value in sorted(metrics.items()):
        if isinstance(value, float):
            comparisons.append(
                Comparison(name=f"test_{key}", recorded=recorded_metrics.get(f"test_{key}"), reproduced=value)
            )
    return ReproduceReport(
        model=name,
        version=info["version"],
        commit=commit,
        dirty_when_trained=tags.get("git.dirty") == "true",
        environment_changed=changed,
        remote_note=remote_note,
        comparisons=comparisons,
    )
