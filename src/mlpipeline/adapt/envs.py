"""The project's environments: uv.lock, and the ``requirements/<env>.txt`` of each environment a stage runs in.

A stage depends on its own environment's resolved packages (``requirements/<env>.txt``, exported from uv.lock),
never on the whole lock, so bumping a dev tool reruns nothing. Which environments exist follows dvc.yaml: each
stage names the requirements file it depends on (check-params: the project's own dependencies, no group).

``mlpipeline lock`` (``make lock``) re-resolves uv.lock and writes every environment's file. ``mlpipeline add
PACKAGE --for WHAT`` (``make add``) adds a package to every dependency group that needs it, then locks:
``--for model`` means every environment that loads a model (the stages that read or write one, and the server),
so a model library (LightGBM, XGBoost) is one command; ``--for <stage>`` that stage's environment.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from mlpipeline.errors import ConfigError, MlpipelineError

logger = logging.getLogger(__name__)

BASE = "check-params"  # the environment of the project's own dependencies (no group)
MODEL_LOADER = "src/mlpipeline/io/modeldir.py"  # a stage whose code reads or writes a model imports it
SERVER_GROUP = "serve"


def uv() -> str:
    """The uv the Makefile uses: $UV, uv on PATH, or the one `make` installed into .tools/."""
    found = os.environ.get("UV") or shutil.which("uv") or str(Path(".tools/bin/uv").resolve())
    if not Path(found).is_file() and not shutil.which(found):
        raise ConfigError("uv not found: run `make setup` (it installs uv into .tools/)")
    return found


def _uv(root: Path, *args: str) -> str:
    done = subprocess.run([uv(), *args], cwd=root, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise MlpipelineError(f"`uv {' '.join(args)}` failed:\n{tail}")
    return done.stdout


def groups(root: Path) -> list[str]:
    """The dependency groups of pyproject.toml."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data.get("dependency-groups", {}))


def envs(root: Path) -> list[str]:
    """Every environment a stage of dvc.yaml runs in, the project's own first."""
    from mlpipeline.graph import load

    graph = load(root)
    return [BASE, *(env for env in dict.fromkeys(s.env for s in graph.stages if s.env) if env != BASE)]


def export(root: Path, env: str) -> Path:
    """Write ``requirements/<env>.txt`` from uv.lock."""
    if env != BASE and env not in groups(root):
        raise ConfigError(f"dvc.yaml names the environment {env!r}, but pyproject.toml has no such dependency group")
    out = Path("requirements") / f"{env}.txt"  # relative: uv writes the command into the file's header
    group = [] if env == BASE else ["--group", env]
    _uv(root, "export", "--frozen", "--no-default-groups", *group, "--no-emit-project", "--no-hashes", "--quiet",
        "-o", out.as_posix())  # fmt: skip
    return root / out


def lock(root: Path) -> list[Path]:
    """Re-resolve uv.lock, sync the environment and write every environment's requirements file."""
    _uv(root, "lock", "--quiet")
    _uv(root, "sync", "--frozen", "--compile-bytecode", "--quiet")
    return [export(root, env) for env in envs(root)]


def groups_for(root: Path, what: str) -> list[str]:
    """The groups a package for ``what`` goes into: ``model`` (every environment that loads a model), a stage of
    dvc.yaml (its environment; none for the project's own) or a dependency group by name."""
    from mlpipeline.graph import load

    graph = load(root)
    if what == "model":
        loaders = [s.env for s in graph.stages if MODEL_LOADER in s.deps and s.env and s.env != BASE]
        found = list(dict.fromkeys([*loaders, *([SERVER_GROUP] if SERVER_GROUP in groups(root) else [])]))
    elif what in graph.names:
        env = graph.stage(what).env
        found = [] if env in (None, BASE) else [str(env)]
    elif what in groups(root):
        found = [what]
    else:
        raise ConfigError(
            f"--for {what!r}: use model, a stage of dvc.yaml ({', '.join(graph.names)}) or a dependency group "
            f"({', '.join(groups(root))})"
        )
    return found


def add(root: Path, package: str, what: str) -> list[str]:
    """Add ``package`` to every group ``what`` needs (the project's own dependencies for check-params), lock, and
    write the requirements files; return the groups."""
    chosen = groups_for(root, what) or [BASE]
    for group in chosen:
        _uv(root, "add", "--no-sync", *(["--group", group] if group != BASE else []), package)
        logger.info("added %s to %s", package, f"group {group}" if group != BASE else "the project's dependencies")
    lock(root)
    return chosen
