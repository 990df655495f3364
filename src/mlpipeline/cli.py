"""The ``mlpipeline`` command: one subcommand per pipeline stage, plus tools around them.

DVC calls the stages (see dvc.yaml); you can too, from the project root:

    $ mlpipeline ingest            # data/raw/iris.csv from params.yaml's ingest section
    $ mlpipeline validate --raw data/raw/iris.csv
    $ mlpipeline --help

Every failure is one line naming what failed and what to do, and a non-zero exit code (2 config, 3 data,
4 service unavailable, 1 other); set MLPIPELINE_DEBUG=1 to also see the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlpipeline.errors import MlpipelineError

logger = logging.getLogger("mlpipeline")

app = typer.Typer(
    name="mlpipeline",
    help=(
        "Reproducible ML pipeline: ingest -> validate -> preprocess -> train -> evaluate.\n\n"
        "Normally run through DVC (`make run` / `dvc repro`), which calls these subcommands in order and skips "
        "the ones whose inputs did not change. Each reads only its own section of params.yaml."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file.")]
RawOption = Annotated[Path, typer.Option("--raw", help="Raw data file written by ingest.")]
DEFAULT_RAW = Path("data/raw/iris.csv")


def _debug() -> bool:
    return os.environ.get("MLPIPELINE_DEBUG", "").lower() in ("1", "true", "yes")


def configure_logging() -> None:
    """Log to stderr: rich on a terminal, plain lines otherwise (DVC, CI, files).

    MLflow is told not to install its own handlers or progress bars and not to send telemetry (these machines,
    and many users', have no network beyond their own services).
    """
    for name, value in (
        ("MLFLOW_CONFIGURE_LOGGING", "false"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "true"),
    ):
        os.environ.setdefault(name, value)
    level = logging.DEBUG if _debug() else logging.INFO
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger.setLevel(level)
    for noisy in ("mlflow", "alembic", "urllib3", "botocore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if _debug() else logging.ERROR)


@app.command()
def ingest(params: ParamsOption = Path("params.yaml")) -> None:
    """Write data/raw/<ingest.name>.csv from ingest.source (sklearn:iris by default, or a CSV/Parquet path)."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import ingest as stage

    stage.run(load_params(params).ingest)


@app.command()
def validate(raw: RawOption = DEFAULT_RAW, params: ParamsOption = Path("params.yaml")) -> None:
    """Check the raw data against its data contract; write reports/data_validation.json."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import validate as stage

    stage.run(load_params(params).validate_, raw)


@app.command()
def preprocess(raw: RawOption = DEFAULT_RAW, params: ParamsOption = Path("params.yaml")) -> None:
    """Stratified split into data/processed/train.csv and test.csv."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import preprocess as stage

    stage.run(load_params(params).preprocess, raw)


@app.command()
def train(params: ParamsOption = Path("params.yaml")) -> None:
    """Fit the model, log it to MLflow and register a new version; write models/."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import train as stage

    stage.run(load_params(params).train)


@app.command()
def evaluate(params: ParamsOption = Path("params.yaml")) -> None:
    """Score the registered model on the test set; write metrics/ and plots/; log to train's MLflow run."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import evaluate as stage

    stage.run(load_params(params).evaluate)


@app.command("check-params")
def check_params(params: ParamsOption = Path("params.yaml")) -> None:
    """Validate the whole params file without running anything."""
    from mlpipeline.settings import load_params

    load_params(params)
    logger.info("%s is valid", params)


@app.command()
def contract(
    data: Annotated[Path, typer.Argument(help="A raw CSV in ingest's format (e.g. data/raw/wine.csv).")],
    out: Annotated[Path, typer.Argument(help="Where to write the contract YAML (e.g. contracts/wine.yaml).")],
    name: Annotated[str, typer.Option(help="The contract's name.")] = "",
) -> None:
    """Draft a data contract from known-good data (observed ranges widened by 10%); review it, then commit it."""
    import yaml

    from mlpipeline.core.contract import infer_contract
    from mlpipeline.io.files import read_csv, write_text

    drafted = infer_contract(read_csv(data, "ingest"), name or data.stem)
    header = (
        f"# Data contract '{drafted.name}', drafted from {data.name} by `mlpipeline contract`. Review the ranges.\n"
    )
    write_text(out, header + yaml.safe_dump(drafted.model_dump(mode="json"), sort_keys=False))
    logger.info("wrote %s (%d features, %d labels)", out, len(drafted.features), len(drafted.labels))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    import click

    configure_logging()
    try:
        app(args=argv, prog_name="mlpipeline", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        logger.error("interrupted")
        return 130
    except MlpipelineError as exc:
        logger.debug("traceback", exc_info=True)
        logger.error("%s", exc)
        return exc.exit_code
    except Exception as exc:
        logger.debug("traceback", exc_info=True)
        logger.error("internal error (%s: %s). Rerun with MLPIPELINE_DEBUG=1 and report it.", type(exc).__name__, exc)
        return 70
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
