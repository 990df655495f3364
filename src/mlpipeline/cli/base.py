"""What every command group shares: the `mlpipeline` Typer app, the common options, running a stage, and the
registered model a command means."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

logger = logging.getLogger("mlpipeline")

app = typer.Typer(
    name="mlpipeline",
    help=(
        "Reproducible ML pipeline: one subcommand per stage of dvc.yaml (`dvc dag` draws them), and tools.\n\n"
        "Normally run through DVC (`make run` / `dvc repro`), which calls the stages in order and skips "
        "the ones whose inputs did not change. Each reads only its own section of params.yaml."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file.")]


def run_stage(stage: str, params: Path) -> None:
    """Run ``stage`` as DVC does (in its container when MLPIPELINE_RUNTIME=docker); exit with its code."""
    from mlpipeline.stages import execute

    code = execute(stage, params)
    if code:
        raise typer.Exit(code)


RefArgument = Annotated[str, typer.Argument(help="`champion`, `previous-champion` or a version number.")]
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="Registered model name (default: train.registered_model, else <ingest.name>-classifier or -regressor).",
    ),
]


def model_name(model: str, params: Path) -> str:
    """``--model``, else the params' registered model (the task from params, else from the contract file)."""
    from mlpipeline.settings import load_params

    if model:
        return model
    loaded = load_params(params)
    contract_task = None
    try:
        import yaml

        data = yaml.safe_load(Path(loaded.validate_.contract).read_text(encoding="utf-8"))
        contract_task = data.get("task") if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError):
        pass  # no readable contract: the params alone decide (classification unless they say otherwise)
    return loaded.model_name(loaded.task_hint(contract_task))
