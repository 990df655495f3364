"""Rebuild exactly what produced a model version, and say honestly whether the result matches.

"Exactly" means the recorded commit *and* the recorded params: a model made by ``dvc exp run -S ...`` or with
an edited params.yaml was not made from the commit's params alone. The params come from the run's
``lineage/params.yaml`` artifact (else from the experiment's git ref, else from the commit when its hash
matches). The commit is checked out into a temporary git worktree sharing this project's DVC cache; data is
restored from the cache or the remote; the whole pipeline runs again (``dvc repro --force``) against an MLflow
store of its own (a reproduction must not register models); the data hashes, the model file's hash and the
test metrics are compared with what the version recorded.

Three outcomes: MATCH (rebuilt, identical), MISMATCH (rebuilt, something differs: named) and UNREPRODUCIBLE
(it cannot be rebuilt faithfully: uncommitted changes when it was trained, params that were not recorded,
data that is nowhere to be found; each named). Never MATCH for something that was not rebuilt as it was made.
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
from typing import Any, Literal

from pydantic import BaseModel

from mlpipeline.errors import ConfigError, MlpipelineError
from mlpipeline.io.files import md5
from mlpipeline.io.lineage import PARAMS_ARTIFACT, describe, git, lock_hashes, unreproducible
from mlpipeline.settings import env_settings, load_yaml
from mlpipeline.tools import dvc_command

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
    verdict: Literal["MATCH", "MISMATCH", "UNREPRODUCIBLE"]
    reasons: list[str]
    notes: list[str]
    comparisons: list[Comparison]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differing_keys(one: str, other: str) -> list[str]:
    """Dotted keys whose values differ between two params files (added and removed keys included)."""
    a, b = _flatten(load_yaml(one, "params") or {}), _flatten(load_yaml(other, "params") or {})
    return sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        argv = [dvc_command(), *cmd[1:]] if cmd[0] == "dvc" else cmd  # this environment's dvc, whatever PATH says
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MlpipelineError(
            f"reproduction step `{' '.join(cmd)}` took longer than {timeout:.0f} s (MLPIPELINE_SUBPROCESS_TIMEOUT)"
        ) from exc


def _must(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    done = _run(cmd, cwd, env, timeout)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise MlpipelineError(f"reproduction step `{' '.join(cmd)}` failed:\n{tail}")


def _recorded_params(run_id: str, tags: dict[str, str], commit: str) -> tuple[str | None, str]:
    """The params the run was made with, and where they were found (or None with the reason)."""
    import mlflow.artifacts

    recorded_md5 = tags.get("params.md5")
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{PARAMS_ARTIFACT}")
        return text, "the run's recorded params"
    except Exception:  # an older run without the artifact, or a store that lost it: try the other sources
        logger.debug("run %s has no %s artifact", run_id, PARAMS_ARTIFACT, exc_info=True)
    experiment = tags.get("dvc.experiment")
    if experiment:
        refs = git("for-each-ref", "--format=%(refname)", "refs/exps") or ""
        for ref in refs.splitlines():
            if ref.endswith(f"/{experiment}"):
                at_ref = git("show", f"{ref}:params.yaml")
                if at_ref is not None and md5_text(at_ref) == recorded_md5:
                    return at_ref, f"experiment {experiment}'s params ({ref})"
    at_commit = git("show", f"{commit}:params.yaml")
    if at_commit is not None and recorded_md5 and md5_text(at_commit) == recorded_md5:
        return at_commit, "the commit's params (same hash as recorded)"
    return None, "the run recorded no params file, and the commit's params.yaml has another hash"


def md5_text(text: str) -> str:
    """MD5 of a text's UTF-8 bytes, as :func:`mlpipeline.io.files.md5` computes for a file."""
    import hashlib

    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _pull_missing(tree: Path, env: dict[str, str], timeout: float) -> str | None:
    """Fetch what the local cache lacks from the DVC remote, when one is configured; a note when that failed."""
    remotes = _run(["dvc", "remote", "list"], tree, env, timeout)
    if not remotes.stdout.strip():
        return None
    done = _run(["dvc", "pull", "--allow-missing"], tree, env, timeout)
    if done.returncode != 0:
        return "could not pull from the DVC remote; rebuilt from the local cache and the pipeline only"
    return None


def _missing_inputs(tree: Path) -> list[str]:
    """Data inputs of the pipeline that the worktree lacks (a file source neither in git nor in the cache)."""
    import yaml

    params = yaml.safe_load((tree / "params.yaml").read_text(encoding="utf-8")) or {}
    source = str((params.get("ingest") or {}).get("source", ""))
    if source and not source.startswith(("sklearn:", "synthetic:")) and not (tree / source).is_file():
        return [source]
    return []


def _rebuilt(tree: Path, tags: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The data and model hashes, and the test metrics, of the pipeline rebuilt in ``tree``: each file found by
    the path the version recorded, else where the commit's dvc.yaml puts it."""
    from mlpipeline.graph import load
    from mlpipeline.io.modeldir import MODEL_FILE
    from mlpipeline.paths import Paths

    graph = load(tree)
    model_dir = graph.output("model")
    producer = graph.producer(model_dir)
    assert producer is not None
    trainer = Paths.for_stage(producer.name, tree / "params.yaml", tree)
    try:
        raw: Path | None = graph.output("raw")
    except ConfigError:  # a commit from before outputs had keys: the recorded path says
        raw = None
    where = {"raw": raw, "train": trainer.dep("train"), "test": trainer.downstream_dep("model", "test")}
    files = {
        name: Path(tags.get(f"data.{name}.path") or str(path))
        for name, path in where.items()
        if path or tags.get(f"data.{name}.path")
    }
    hashes = lock_hashes(files, tree / "dvc.lock")
    if (tree / model_dir / MODEL_FILE).is_file():
        hashes["mlpipeline.model_md5"] = md5(tree / model_dir / MODEL_FILE)
    metrics = json.loads((tree / graph.output("metrics")).read_text(encoding="utf-8"))
    return hashes, metrics


def _unreproducible(name: str, version: str, commit: str, reasons: list[str], notes: list[str]) -> ReproduceReport:
    return ReproduceReport(
        model=name,
        version=version,
        commit=commit,
        verdict="UNREPRODUCIBLE",
        reasons=reasons,
        notes=notes,
        comparisons=[],
    )


def reproduce(name: str, ref: str) -> ReproduceReport:
    """Rebuild ``name``@``ref`` from its commit and recorded params in a temporary worktree, and compare."""
    import mlflow.artifacts  # noqa: F401  (fails early, before a worktree exists, if MLflow is missing)

    info = describe(name, ref)
    tags: dict[str, str] = info["tags"]
    commit = tags.get("git.commit")
    root = git("rev-parse", "--show-toplevel")
    if not commit or not root:
        raise MlpipelineError(f"{name} v{info['version']} has no git.commit lineage tag, or this is not a git checkout")
    if git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise MlpipelineError(f"commit {commit[:12]} of {name} v{info['version']} is not in this repository: git fetch")

    reasons: list[str] = []
    notes: list[str] = []
    dirty = unreproducible(tags)
    if tags.get("git.dirty") == "true" and "git.dirty_files" not in tags:
        reasons.append("the tree had uncommitted changes when it was trained, and they were not recorded")
    if dirty:
        reasons.append(f"uncommitted changes when it was trained, not in any commit: {', '.join(dirty)}")
    params_text, params_source = _recorded_params(info["run_id"], tags, commit)
    if params_text is None:
        reasons.append(params_source)
    else:
        at_commit = git("show", f"{commit}:params.yaml") or ""
        changed = differing_keys(at_commit, params_text)
        if changed:
            notes.append(
                f"params differ from commit {commit[:12]} in {', '.join(changed)}; rebuilt with {params_source}"
            )
    if reasons:
        return _unreproducible(name, info["version"], commit, reasons, notes)
    assert params_text is not None

    settings = env_settings()
    timeout = settings.mlpipeline_subprocess_timeout
    cache = Path(root) / ".dvc" / "cache"
    work = Path(tempfile.mkdtemp(prefix="mlpipeline-reproduce-"))
    tree = work / "tree"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_TRACKING_URI"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLPIPELINE_PYTHON"] = sys.executable  # this environment, with the commit's code (bin/stage sets src/)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    reproduced: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    try:
        _must(["git", "worktree", "add", "--detach", "--force", str(tree), commit], Path(root), env, timeout)
        local_config = Path(root) / ".dvc" / "config.local"
        if local_config.is_file():  # remote credentials (git-ignored, so not in the worktree); deleted with it
            shutil.copy2(local_config, tree / ".dvc" / "config.local")
        (tree / "params.yaml").write_text(params_text, encoding="utf-8")
        _must(["dvc", "cache", "dir", "--local", str(cache)], tree, env, timeout)
        _run(["dvc", "checkout", "--allow-missing"], tree, env, timeout)
        note = _pull_missing(tree, env, timeout)
        if note:
            notes.append(note)
        missing = _missing_inputs(tree)
        if missing:
            reasons.append(f"missing data: {', '.join(missing)} is neither in git nor in the DVC cache or remote")
        else:
            logger.info("rebuilding %s v%s from commit %s in %s", name, info["version"], commit[:12], tree)
            _must(["dvc", "repro", "--force"], tree, env, timeout)
            reproduced, metrics = _rebuilt(tree, tags)
        if git("diff", "--quiet", commit, "--", "uv.lock", cwd=Path(root)) is None:
            notes.append("uv.lock changed since that commit; the current environment was used")
    finally:
        git("worktree", "remove", "--force", str(tree), cwd=Path(root))
        shutil.rmtree(work, ignore_errors=True)

    if reasons:
        return _unreproducible(name, info["version"], commit, reasons, notes)
    keys = [*DATA_KEYS, "mlpipeline.model_md5"]
    comparisons = [Comparison(name=k, recorded=tags.get(k), reproduced=reproduced.get(k)) for k in keys]
    recorded_metrics: dict[str, Any] = info["metrics"]
    for key, value in sorted(metrics.items()):
        if isinstance(value, float):
            comparisons.append(
                Comparison(name=f"test_{key}", recorded=recorded_metrics.get(f"test_{key}"), reproduced=value)
            )
    differing = [c.name for c in comparisons if not c.match]
    return ReproduceReport(
        model=name,
        version=info["version"],
        commit=commit,
        verdict="MISMATCH" if differing else "MATCH",
        reasons=[f"differs: {', '.join(differing)}"] if differing else [],
        notes=notes,
        comparisons=comparisons,
    )
