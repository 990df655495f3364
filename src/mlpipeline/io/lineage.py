"""Where a model came from: git commit and dirtiness, DVC data and params hashes, experiment name, runtime.

Data hashes are read from ``dvc.lock`` (which DVC updates after each stage, so train sees this run's ingest
and preprocess entries) and checked against the files train actually read: ``lineage.consistent`` says
whether they agree. DVC 3 hashes a file's plain bytes, so ``md5`` here equals the hashes in dvc.lock.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from mlpipeline.io.files import md5
from mlpipeline.settings import env_settings

LOCK = Path("dvc.lock")
PARAMS = Path("params.yaml")


def git(*args: str, cwd: Path | None = None) -> str | None:
    """Output of a git command, or None outside a repository / without git."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def lock_hashes(lock: Path = LOCK) -> dict[str, str]:
    """``{"data.raw.md5": ..., "data.train.md5": ..., "data.test.md5": ...}`` from a dvc.lock's preprocess stage."""
    import yaml

    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    preprocess = stages.get("preprocess", {})
    hashes: dict[str, str] = {}
    for dep in preprocess.get("deps", []):
        if str(dep.get("path", "")).startswith("data/raw/"):
            hashes["data.raw.md5"] = dep["md5"]
            hashes["data.raw.path"] = dep["path"]
    for out in preprocess.get("outs", []):
        name = Path(out["path"]).stem  # train / test
        hashes[f"data.{name}.md5"] = out["md5"]
    return hashes


def lineage_tags(read: dict[str, Path]) -> dict[str, str]:
    """Tags for a run and its model version; ``read`` maps names (train, test) to the files the stage read."""
    runtime = "docker" if os.environ.get("MLPIPELINE_IN_CONTAINER") else env_settings().mlpipeline_runtime
    tags: dict[str, str] = {"mlpipeline.runtime": runtime}
    commit = git("rev-parse", "HEAD")
    if commit:
        tags["git.commit"] = commit
        # dvc.lock is rewritten by the very run being recorded, so it does not make the tree dirty.
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock")
        tags["git.dirty"] = "true" if status else "false"
    locked = lock_hashes()
    tags.update(locked)
    actual = {f"data.{name}.md5": md5(path) for name, path in read.items() if path.is_file()}
    tags["lineage.consistent"] = "true" if all(locked.get(k) == v for k, v in actual.items()) else "false"
    tags.update(actual)
    if PARAMS.is_file():
        tags["params.md5"] = md5(PARAMS)
    experiment = os.environ.get("DVC_EXP_NAME")
    if experiment:
        tags["dvc.experiment"] = experiment
    return tags


LINEAGE_PREFIXES = ("git.", "data.", "params.", "dvc.", "mlpipeline.", "lineage.", "promotion", "rollback.")


def describe(name: str, ref: str) -> dict[str, Any]:
    """Everything known about a model version: lineage tags, run, metrics, aliases (for `mlpipeline lineage`)."""
    from mlpipeline.io import registry
    from mlpipeline.io.tracking import translate_errors

    version = registry.resolve(name, ref)
    with translate_errors(f"reading run {version.run_id}"):
        run = registry.client().get_run(version.run_id)
    tags = {k: v for k, v in sorted(version.tags.items()) if k.startswith(LINEAGE_PREFIXES)}
    return {
        "model": name,
        "version": str(version.version),
        "aliases": sorted(getattr(version, "aliases", []) or []),
        "run_id": version.run_id,
        "experiment_id": run.info.experiment_id,
        "created": version.creation_timestamp,
        "tags": tags,
        "params": dict(sorted(run.data.params.items())),
        "metrics": {k: v for k, v in sorted(run.data.metrics.items()) if not k.startswith("gate_")},
    }
