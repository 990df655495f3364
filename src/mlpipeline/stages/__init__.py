"""The pipeline stages: one module per stage, each with ``main(params, paths)``, run by :func:`main`.

``dvc.yaml`` runs ``sh bin/stage <stage>``, which runs ``python -m mlpipeline.stages <stage>``. This runner
imports only what the stage uses (the stage's own module is imported by name), so a stage never pays for the
CLI's other commands, and a stage's code dependencies in dvc.yaml are exactly the modules it imports (a test
computes them). With ``MLPIPELINE_RUNTIME=docker`` the stage runs in its own container instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipeline.console import configure_logging, guarded

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlpipeline.settings import Params

# Runs where DVC runs even with MLPIPELINE_RUNTIME=docker: it only reads params.yaml and writes a marker file.
IN_PROCESS_ONLY = ("check-params",)


def module_of(stage: str) -> str:
    """``check-params`` -> ``mlpipeline.stages.check_params``."""
    return f"mlpipeline.stages.{stage.replace('-', '_')}"


def own_section(params: Params, stage: str) -> BaseModel | None:
    """The section of your own ``stage`` checked by its module's ``PARAMS`` (None when it has no section)."""
    from pydantic import BaseModel

    from mlpipeline.errors import ConfigError

    if stage not in (params.model_extra or {}):
        return None
    try:
        module = importlib.import_module(module_of(stage))
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"params.yaml has a section {stage!r} but there is no stage module {module_of(stage)}"
        ) from exc
    model = getattr(module, "PARAMS", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(
            f"params.yaml has a section {stage!r}, but {module_of(stage)} declares no PARAMS to check it: add "
            "`PARAMS = <a Section subclass with its keys>` to the module (see docs/adapt.md)"
        )
    return params.section(stage, model)


def run_stage(stage: str, params_file: Path) -> None:
    """Load and check the params, derive the paths, and run ``stage`` in this process."""
    from mlpipeline.errors import ConfigError
    from mlpipeline.paths import Paths
    from mlpipeline.settings import load_params

    try:
        params = load_params(params_file)
        own_section(params, stage)  # a stage of your own: its section's keys, before any work
        importlib.import_module(module_of(stage)).main(params, Paths.for_stage(stage, params_file))
    except ConfigError as exc:
        hint = _left_by_experiment(params_file)
        if not hint:
            raise
        raise ConfigError(f"{str(exc).rstrip('.')}{hint}") from exc


def _left_by_experiment(params_file: Path) -> str:
    """What to tell a user whose `dvc exp run -S ...` in the workspace wrote a bad value into the file: DVC
    applies the values to the file itself and does not undo them when the run fails."""
    from mlpipeline.settings import env_settings

    settings = env_settings()
    if not settings.in_experiment or Path(settings.dvc_root or "").resolve() != Path.cwd().resolve():
        return ""  # not a workspace experiment (a --temp one changes only its own copy)
    return (
        f". If a value came from `dvc exp run -S` (experiment {settings.dvc_exp_name!r}): DVC wrote it into "
        f"{params_file} and does not undo it when a run fails, so `git diff {params_file}` shows it; put the file "
        "back before the next run (`make exp` checks -S values first, and puts the file back if an experiment fails)"
    )


def execute(stage: str, params_file: Path) -> int | None:
    """Run ``stage`` here, or in its container when ``MLPIPELINE_RUNTIME=docker`` (and we are not in one)."""
    if stage not in IN_PROCESS_ONLY:
        from mlpipeline.settings import env_settings

        settings = env_settings()
        if settings.mlpipeline_runtime == "docker" and not settings.mlpipeline_in_container:
            from mlpipeline.runtimes.docker import run_in_container

            return run_in_container(stage, ["--params", str(params_file)])
    run_stage(stage, params_file)
    return None


def _dispatch(argv: list[str]) -> int | None:
    from mlpipeline.graph import load

    parser = argparse.ArgumentParser(
        prog="python -m mlpipeline.stages", description="Run one pipeline stage (what dvc.yaml calls)."
    )
    parser.add_argument("stage", help="a stage of dvc.yaml")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file")
    args = parser.parse_args(argv)
    stages = load(Path("."), args.params).project_stages
    if args.stage not in stages:
        from mlpipeline.errors import ConfigError

        raise ConfigError(f"no stage {args.stage!r} runs `sh bin/stage` in dvc.yaml (stages: {', '.join(stages)})")
    if importlib.util.find_spec(module_of(args.stage)) is None:
        from mlpipeline.errors import ConfigError

        raise ConfigError(
            f"stage {args.stage!r} has no module: write src/mlpipeline/stages/{args.stage.replace('-', '_')}.py "
            "with `def main(params, paths)` (`mlpipeline new stage` writes one)"
        )
    return execute(args.stage, args.params)


def main(argv: list[str]) -> int:
    """Run a stage from command-line arguments; return the exit code."""
    configure_logging()
    return guarded(lambda: _dispatch(argv))
