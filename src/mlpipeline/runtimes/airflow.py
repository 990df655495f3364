"""Airflow: the DAG's stage graph, generated from DVC's, and the command every Airflow task runs.

The DAG file (``airflow/dags/mlpipeline_dag.py``) imports nothing of this project. It reads
``airflow/dags/pipeline.json``, which :func:`write_spec` generates from DVC's own stage graph (the one ``dvc dag``
draws) and a test keeps fresh, and turns each stage into a task that runs ``mlpipeline task <stage>`` in a
workspace (a clone of the project on the worker). :func:`run_task` is that command:

1. take the workspace lock (two DAG runs, or a run and a task retry, never interleave in one workspace);
2. check out the DAG run's commit, so params.yaml, dvc.yaml and the code are those of that commit;
3. with S3 credentials in the environment, configure the DVC remote (``setup-remote``, idempotent);
4. ``dvc repro --pull <stage>``: the stage with whatever it needs upstream. Upstream stages that another worker
   ran are not run again: their outputs are pulled, or restored from DVC's run-cache, exactly as DVC would
   locally, so an unchanged stage is skipped and dvc.lock comes out as ``make run`` writes it;
5. ``dvc push --run-cache <stage>``: its outputs and run-cache entry, for the workers of the tasks after it.

Workers share nothing but the DVC remote and the MLflow server. Without a remote (one workspace, development)
steps 3 and 5 are skipped and step 4 runs without ``--pull``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError

logger = logging.getLogger(__name__)

SPEC = Path("airflow/dags/pipeline.json")
LOCK = Path(".mlpipeline/airflow-task.lock")


def stage_graph(root: Path) -> dict[str, list[str]]:
    """Each stage of ``root``'s dvc.yaml and the stages it depends on, as DVC's own graph has them.

    Stages come in dvc.yaml's order wherever the graph allows (a topological order), upstream lists sorted.
    """
    import heapq

    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        # DVC's graph: an edge goes from a stage to a stage it depends on (as `dvc dag` draws it, reversed).
        edges = [(dependency.name, stage.name) for stage, dependency in repo.index.graph.edges]
        listed = [stage.name for stage in repo.index.stages]
    position = {name: i for i, name in enumerate(listed)}
    upstream: dict[str, set[str]] = {name: set() for name in listed}
    for up, down in edges:
        upstream[down].add(up)
    # Kahn's algorithm, taking the ready stage that comes first in dvc.yaml each time.
    waiting = {name: len(ups) for name, ups in upstream.items()}
    ready = [(position[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for down, ups in upstream.items():
            if name in ups:
                waiting[down] -= 1
                if waiting[down] == 0:
                    heapq.heappush(ready, (position[down], down))
    return {name: sorted(upstream[name], key=position.__getitem__) for name in order}


def spec_text(root: Path) -> str:
    """The committed description of the stage graph that the DAG file reads."""
    graph = stage_graph(root)
    spec = {
        "about": "Generated from dvc.yaml by `mlpipeline airflow-spec`; read by mlpipeline_dag.py. Do not edit.",
        "stages": [{"name": name, "upstream": upstream} for name, upstream in graph.items()],
    }
    return json.dumps(spec, indent=2) + "\n"


def write_spec(root: Path, check: bool = False) -> bool:
    """Write (or with ``check``, only compare) the spec; True when the file already matched dvc.yaml."""
    from mlpipeline.io.files import write_text

    path = root / SPEC
    fresh = spec_text(root)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == fresh:
        return True
    if check:
        raise ConfigError(f"{SPEC} does not match dvc.yaml's stage graph: run `mlpipeline airflow-spec` and commit it")
    write_text(path, fresh)
    return False


@contextlib.contextmanager
def workspace_lock(root: Path) -> Iterator[None]:
    """Hold the workspace's task lock (waits for a task of another DAG run in the same workspace)."""
    path = root / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another task holds %s: waiting for it", LOCK)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=600)


def checkout(root: Path, commit: str) -> str:
    """Put the workspace at ``commit`` (fetched from its ``origin`` when unknown); returns the full hash.

    A workspace already at ``commit`` is left as it is. Otherwise dvc.lock is reset first (what an earlier run
    wrote there is in the DVC cache, remote and run-cache) and HEAD is detached at ``commit``.
    """
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        fetched = _git(root, "fetch", "--quiet", "origin")
        if fetched.returncode != 0:
            raise ConfigError(
                f"commit {commit!r} is not in the workspace {root} and `git fetch origin` failed: "
                f"{fetched.stderr.strip() or fetched.stdout.strip()}"
            )
    resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if resolved.returncode != 0:
        raise ConfigError(f"commit {commit!r} is not in the workspace {root} nor in its origin: push it first")
    sha = resolved.stdout.strip()
    if _git(root, "rev-parse", "HEAD").stdout.strip() == sha:
        return sha  # already there: the workspace (and what earlier tasks of this commit wrote) stays as it is
    _git(root, "checkout", "--quiet", "--", "dvc.lock")
    moved = _git(root, "checkout", "--quiet", "--detach", sha)
    if moved.returncode != 0:
        raise ConfigError(
            f"cannot check out {sha[:12]} in the workspace {root}: {moved.stderr.strip()} "
            "(a workspace is the workers' own clone: commit or discard changes made in it by hand)"
        )
    return sha


def _has_remote(root: Path) -> bool:
    """Whether the workspace has a default DVC remote (read from its config alone: no repo index to build)."""
    from dvc.config import Config

    return bool(Config(dvc_dir=str(root / ".dvc"))["core"].get("remote"))


def _dvc(root: Path, *args: str) -> None:
    """Run DVC with its output in this task's log; a failure ends the task with the stage's own error line."""
    from mlpipeline.settings import env_settings
    from mlpipeline.tools import dvc_command

    cmd = [dvc_command(), *args]
    logger.info("$ %s", " ".join(cmd))
    try:
        done = subprocess.run(
            cmd,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=env_settings().mlpipeline_subprocess_timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise MlpipelineError(
            f"`{' '.join(cmd)}` took too long and was stopped (MLPIPELINE_SUBPROCESS_TIMEOUT)"
        ) from exc
    for line in (done.stdout + done.stderr).splitlines():
        if line.strip():
            print(line, flush=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        first = errors[0] if errors else (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise MlpipelineError(f"`{' '.join(cmd)}` failed: {first}")


def run_task(stage: str, commit: str = "") -> dict[str, Any]:
    """One Airflow task: ``stage`` and what it needs, in the workspace (the current directory), at ``commit``."""
    root = Path.cwd()
    from mlpipeline.io.remote import configure, ensure_bucket, remote_from_env
    from mlpipeline.settings import env_settings

    with workspace_lock(root):
        if commit:
            commit = checkout(root, commit)
        spec = root / SPEC
        known = (
            [entry["name"] for entry in json.loads(spec.read_text(encoding="utf-8"))["stages"]]
            if spec.exists()
            else [stage]
        )
        if stage not in known:
            raise ConfigError(f"no stage {stage!r} in {SPEC} at this commit (stages: {', '.join(known)})")
        settings = env_settings()
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            target = remote_from_env()
            remote_created = ensure_bucket(target)
            configure(target)
            logger.info("DVC remote %s%s", target.url, " (bucket created)" if remote_created else "")
        remote = _has_remote(root)
        _dvc(root, "repro", *(["--pull"] if remote else []), stage)
        if remote:
            _dvc(root, "push", "--run-cache", stage)
    return {"stage": stage, "commit": commit or None, "remote": remote}
