"""Where a model came from: git commit and uncommitted files, DVC data and params hashes, experiment, runtime.

Data hashes are read from ``dvc.lock`` (which DVC updates after each stage, so train sees this run's entries
of the stages before it), each found by its file's path in whichever stage wrote it, and checked against the
files train actually read: ``lineage.consistent`` says whether they agree. DVC 3 hashes a file's plain bytes,
so ``md5`` here equals the hashes in dvc.lock. The params file itself is logged with the run
(``lineage/params.yaml``), so ``reproduce`` can rebuild with exactly the params a model was trained with, also
when they came from ``dvc exp run -S``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from mlpipeline.io.files import md5
from mlpipeline.settings import EnvSettings

LOCK = Path("dvc.lock")
PARAMS_ARTIFACT = "lineage/params.yaml"
GIT_TIMEOUT = 30.0
# MLflow caps a tag value; a longer list of uncommitted files is cut with a marker.
MAX_TAG = 4000
# Uncommitted changes a rebuild can still take into account: the run records the params file, and dvc.lock is what
# the run itself writes. A change to anything else (code, contracts, dvc.yaml, sources) is in no commit.
RESTORABLE = ("params.yaml", "dvc.lock")


def git(*args: str, cwd: Path | None = None) -> str | None:
    """Output of a git command, or None outside a repository / without git / when it fails."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def locked_stages(lock: bytes | None) -> dict[str, Any]:
    """The ``stages`` of a dvc.lock's content (``None``: no lock yet), by name."""
    import yaml

    return dict((yaml.safe_load(lock) or {}).get("stages") or {}) if lock else {}


def lock_hashes(files: dict[str, Path], lock: Path = LOCK) -> dict[str, str]:
    """``{"data.<name>.md5": ..., "data.<name>.path": ...}`` for each named file that a stage in ``lock``
    (a dvc.lock) records as its output, whichever stage that is."""
    stages = locked_stages(lock.read_bytes() if lock.is_file() else None)
    recorded = {
        str(out.get("path")): out.get("md5")
        for entry in stages.values()
        if isinstance(entry, dict)
        for out in entry.get("outs", [])
        if isinstance(out, dict)
    }
    hashes: dict[str, str] = {}
    for name, path in files.items():
        found = recorded.get(path.as_posix())
        if found:
            hashes[f"data.{name}.md5"] = str(found)
            hashes[f"data.{name}.path"] = path.as_posix()
    return hashes


def uncommitted_files() -> list[str]:
    """Files that differ from the commit (modified, added, deleted or untracked), except dvc.lock, which the run
    being recorded rewrites itself."""
    scope = ("--", ".", ":(exclude)dvc.lock")
    changed = git("diff", "--name-only", "-z", "HEAD", *scope) or ""
    untracked = git("ls-files", "--others", "--exclude-standard", "-z", *scope) or ""
    return sorted({name for name in (changed + "\0" + untracked).split("\0") if name})


def unreproducible(tags: dict[str, str]) -> list[str]:
    """The uncommitted files of a run's lineage that no commit holds (so the model cannot be rebuilt from one)."""
    return [name for name in tags.get("git.dirty_files", "").split(",") if name and name not in RESTORABLE]


def lineage_tags(
    files: dict[str, Path], read: dict[str, Path], params_file: Path, settings: EnvSettings
) -> dict[str, str]:
    """Tags for a run and its model version: the dvc.lock hashes of ``files`` (names such as raw, train, test
    to paths), and those of ``read``, the files the stage itself read, which must agree with dvc.lock."""
    tags: dict[str, str] = {"mlpipeline.runtime": "docker" if settings.mlpipeline_in_container else "local"}
    commit = git("rev-parse", "HEAD")
    if commit:
        tags["git.commit"] = commit
        dirty = uncommitted_files()
        tags["git.dirty"] = "true" if dirty else "false"
        if dirty:
            listed = ",".join(dirty)
            tags["git.dirty_files"] = listed if len(listed) <= MAX_TAG else listed[:MAX_TAG] + ",..."
    locked = lock_hashes({**files, **read})
    tags.update(locked)
    actual = {f"data.{name}.md5": md5(path) for name, path in read.items() if path.is_file()}
    tags["lineage.consistent"] = "true" if all(locked.get(k) == v for k, v in actual.items()) else "false"
    tags.update(actual)
    if params_file.is_file():
        tags["params.md5"] = md5(params_file)
    if settings.dvc_exp_name:
        tags["dvc.experiment"] = settings.dvc_exp_name
    if settings.dvc_exp_baseline_rev:
        tags["dvc.exp_baseline"] = settings.dvc_exp_baseline_rev
    return tags


LINEAGE_PREFIXES = ("git.", "data.", "params.", "dvc.", "mlpipeline.", "lineage.", "promotion", "rollback.")


def describe(name: str, ref: str) -> dict[str, Any]:
    """Everything known about a model version: lineage tags, run, metrics, aliases (for `mlpipeline lineage`)."""
    from mlpipeline.io import registry
    from mlpipeline.io.tracking import client, translate_errors

    version = registry.resolve(name, ref)
    with translate_errors(f"reading run {version.run_id}"):
        run = client().get_run(version.run_id)
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
