"""The pipeline's commands: one per stage of dvc.yaml (yours too), the whole run, experiments, the params check
and drafting a data contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpipeline.cli.base import ParamsOption, app, logger, model_name, run_stage


@app.command()
def ingest(params: ParamsOption = Path("params.yaml")) -> None:
    """Write data/raw/<ingest.name>.csv from ingest.source (sklearn:<name>, or a file under data/sources/)."""
    run_stage("ingest", params)


@app.command()
def validate(params: ParamsOption = Path("params.yaml")) -> None:
    """Check the raw data against its data contract; write reports/data_validation.json."""
    run_stage("validate", params)


@app.command()
def preprocess(params: ParamsOption = Path("params.yaml")) -> None:
    """Stratified split into data/processed/train and test (.csv, or .parquet by preprocess.format)."""
    run_stage("preprocess", params)


@app.command()
def train(params: ParamsOption = Path("params.yaml")) -> None:
    """Fit the model, log it to MLflow and register a new version; write models/."""
    run_stage("train", params)


@app.command()
def evaluate(params: ParamsOption = Path("params.yaml")) -> None:
    """Score the registered model on the test set; write metrics/ and plots/; log to train's MLflow run."""
    run_stage("evaluate", params)


@app.command()
def promote(
    params: ParamsOption = Path("params.yaml"),
    version: Annotated[
        str, typer.Option("--version", help="Gate this registered version now (e.g. an experiment's challenger).")
    ] = "",
    after_experiment: Annotated[
        bool,
        typer.Option(
            "--after-experiment",
            help="If the workspace's verdict was made by an experiment, gate it again as the workspace's own "
            "(what `make run` does after `dvc exp apply`); otherwise do nothing.",
        ),
    ] = False,
    model: Annotated[str, typer.Option("--model", help="Registered model (with --version).")] = "",
) -> None:
    """Run the promotion gate; move `champion` only if every check passes (metrics/promotion.json).

    Experiments never move `champion`: their candidate gets the `challenger` alias. Promote one explicitly with
    `mlpipeline promote --version N` (the same gate), or `dvc exp apply` it and `make run`.
    """
    if version and after_experiment:
        raise typer.BadParameter("--version and --after-experiment exclude each other")
    if version:
        from mlpipeline.io import tracking
        from mlpipeline.io.remote import cached_file
        from mlpipeline.settings import load_params
        from mlpipeline.stages.promote import promote_version

        tracking.configure()
        promote_version(load_params(params).promote, model_name(model, params), version, cached_file)
    elif after_experiment:
        from mlpipeline.runtimes.pipeline import regate_experiment_verdict

        code = regate_experiment_verdict(params)
        if code:
            raise typer.Exit(code)
    else:
        run_stage("promote", params)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_command(ctx: typer.Context, params: ParamsOption = Path("params.yaml")) -> None:
    """The whole pipeline, as `make run` runs it: check params and code deps, `dvc repro` (extra arguments are
    its own: a stage, -f), re-gate an applied experiment, show the metrics. A failed stage's exit code is this
    command's (3 for data, 2 for configuration...), where `dvc repro` exits 255 and make 2 whatever failed."""
    from mlpipeline.runtimes.pipeline import run as run_pipeline

    code = run_pipeline(params, ctx.args)
    if code:
        raise typer.Exit(code)


@app.command("exp", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exp_command(ctx: typer.Context, params: ParamsOption = Path("params.yaml")) -> None:
    """An experiment, as `make exp` runs it: check the -S overrides, `dvc exp run` (the extra arguments are its
    own), exit with the failed stage's code. A failed workspace experiment leaves params.yaml, dvc.lock and the
    outputs as they were (DVC itself leaves its -S values in params.yaml)."""
    from mlpipeline.runtimes.experiment import run_experiment

    code = run_experiment(params, ctx.args)
    if code:
        raise typer.Exit(code)


@app.command("check-params", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def check_params(
    ctx: typer.Context,
    params: ParamsOption = Path("params.yaml"),
    set_param: Annotated[
        list[str] | None,
        typer.Option("--set-param", "-S", help="An experiment's override, as for `dvc exp run -S key=value`."),
    ] = None,
) -> None:
    """Validate the whole params file (and an experiment's -S overrides) without running anything.

    `make run` and `make exp` call it first. Other `dvc exp run` options are accepted and ignored, so
    `mlpipeline check-params $ARGS` checks exactly what `dvc exp run $ARGS` would run with.
    """
    from mlpipeline.runtimes.overrides import check_with_overrides

    checked = check_with_overrides(params, list(set_param or []))
    logger.info("%s is valid%s", params, f" ({checked} combinations of -S checked)" if set_param else "")


@app.command()
def contract(
    data: Annotated[
        Path,
        typer.Argument(
            help="A CSV/Parquet file: your own (with --target) or ingest's output (e.g. data/raw/wine.csv)."
        ),
    ],
    out: Annotated[Path, typer.Argument(help="Where to write the contract YAML (e.g. contracts/wine.yaml).")],
    name: Annotated[str, typer.Option(help="The contract's name (default: the file's name).")] = "",
    target: Annotated[
        str, typer.Option(help="The label column of your own file (omit for ingest's output, whose label is target).")
    ] = "",
    task: Annotated[
        str, typer.Option(help="auto, classification or regression (auto: as ingest decides from the labels).")
    ] = "auto",
    use: Annotated[
        bool,
        typer.Option(
            "--use",
            help="Also point params.yaml at the file and the contract (ingest.source/name/target/task, "
            "validate.contract); the file must be under data/sources/.",
        ),
    ] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Draft a data contract from known-good data: numeric ranges widened by 10%, categories with their values,
    which columns may be missing, the labels (or a regression target's range). Review it, then commit it."""
    from mlpipeline.io.drafting import draft_contract

    draft_contract(data, out, name=name, target=target, task=task, use=use, params_file=params)


def _stage_command(stage: str) -> Any:
    def command(params: ParamsOption = Path("params.yaml")) -> None:
        run_stage(stage, params)

    return command


def add_stage_commands(root: Path) -> None:
    """A command for each stage of ``root``'s dvc.yaml that has none yet (a stage of your own): ``mlpipeline
    <stage>`` runs it as DVC does."""
    from mlpipeline.errors import MlpipelineError
    from mlpipeline.graph import load

    try:
        stages = load(root).project_stages
    except MlpipelineError:
        return  # no readable dvc.yaml here: only the built-in commands
    known = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "") for c in app.registered_commands}
    for stage in stages:
        if stage not in known:
            app.command(name=stage, help=f"Run the {stage} stage of dvc.yaml (your own, in mlpipeline.stages).")(
                _stage_command(stage)
            )
