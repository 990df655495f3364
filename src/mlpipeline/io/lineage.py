"""Where a run came from: git commit and dirtiness, DVC data hashes, experiment name and runtime."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlpipeline.io.files import md5
from mlpipeline.settings import env_settings


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def lineage_tags(data: dict[str, Path]) -> dict[str, str]:
    """Tags for an MLflow run or model version: ``git.commit``, ``git.dirty``, ``data.<name>.md5``, ...

    The md5 values equal the hashes in dvc.lock (DVC 3 hashes a file's plain bytes), so a model can be traced to
    the exact data that built it.
    """
    tags: dict[str, str] = {"mlpipeline.runtime": env_settings().mlpipeline_runtime}
    commit = _git("rev-parse", "HEAD")
    if commit:
        tags["git.commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no")
        tags["git.dirty"] = "true" if status else "false"
    for name, path in data.items():
        if path.is_file():
            tags[f"data.{name}.md5"] = md5(path)
    params = Path("params.yaml")
    if params.is_file():
        tags["params.md5"] = md5(params)
    experiment = os.environ.get("DVC_EXP_NAME")
    if experiment:
        tags["dvc.experiment"] = experiment
    return tags
