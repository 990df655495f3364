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
        "Reproducible ML pipeline: ingest -> validate -> preprocess -> train -> evaluate -> promote.\n\n"
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


@app.command()
def promote(params: ParamsOption = Path("params.yaml")) -> None:
    """Run the promotion gate; move the `champion` alias only if every check passes (metrics/promotion.json)."""
    from mlpipeline.settings import load_params
    from mlpipeline.stages import promote as stage

    stage.run(load_params(params).promote)


HEADLINE = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")
RefArgument = Annotated[str, typer.Argument(help="`champion`, `previous-champion` or a version number.")]
ModelOption = Annotated[str, typer.Option("--model", help="Registered model name (default: train.registered_model).")]


def _model_name(model: str, params: Path) -> str:
    from mlpipeline.settings import load_params

    return model or load_params(params).train.registered_model


@app.command()
def lineage(
    ref: RefArgument = "champion",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Show where a model version came from: git commit, data and params hashes, run, metrics, aliases.

    Example: `mlpipeline lineage champion`, `mlpipeline lineage 3 --json`.
    """
    import json

    from mlpipeline.io import tracking
    from mlpipeline.io.lineage import describe

    tracking.configure()
    info = describe(_model_name(model, params), ref)
    if as_json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    tags = info["tags"]
    lines = [
        f"{info['model']} version {info['version']}" + (f"  [{', '.join(info['aliases'])}]" if info["aliases"] else ""),
        f"  run            {info['run_id']} (experiment {info['experiment_id']})",
        f"  git commit     {tags.get('git.commit', '?')}"
        + ("  (tree was dirty)" if tags.get("git.dirty") == "true" else ""),
        f"  raw data       {tags.get('data.raw.path', '?')}  md5 {tags.get('data.raw.md5', '?')}",
        f"  train / test   md5 {tags.get('data.train.md5', '?')} / {tags.get('data.test.md5', '?')}",
        f"  params.yaml    md5 {tags.get('params.md5', '?')}",
        f"  runtime        {tags.get('mlpipeline.runtime', '?')}"
        + (f"   dvc experiment {tags['dvc.experiment']}" if "dvc.experiment" in tags else ""),
        f"  promotion      {tags.get('promotion', 'not gated')}"
        + (f" ({tags['promotion.reason']})" if "promotion.reason" in tags else ""),
        "  params         " + ", ".join(f"{k}={v}" for k, v in info["params"].items()),
        "  test metrics   "
        + ", ".join(f"{k}={info['metrics'][f'test_{k}']:.4f}" for k in HEADLINE if f"test_{k}" in info["metrics"]),
    ]
    typer.echo("\n".join(lines))


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on both versions).")],
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Move `champion` back to `previous-champion`, recording the reason."""
    from mlpipeline.io import registry, tracking

    tracking.configure()
    name = _model_name(model, params)
    demoted, restored = registry.rollback(name, reason)
    logger.info("rolled back %s: champion is v%s again (v%s demoted: %s)", name, restored, demoted, reason)


@app.command()
def reproduce(
    ref: RefArgument = "champion",
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Rebuild a model version from its commit in a temporary worktree; report whether data and metrics match.

    Exit code 0 when everything matches, 5 when something differs.
    """
    from mlpipeline.io import tracking
    from mlpipeline.io.reproduce import reproduce as rebuild

    tracking.configure()
    report = rebuild(_model_name(model, params), ref)
    width = max(len(c.name) for c in report.comparisons)
    typer.echo(f"{report.model} v{report.version} from commit {report.commit[:12]}:")
    for c in report.comparisons:
        status = "ok     " if c.match else "DIFFERS"
        typer.echo(f"  {status} {c.name:{width}}  recorded {c.recorded}  reproduced {c.reproduced}")
    if report.dirty_when_trained:
        typer.echo("  note: the tree had uncommitted changes when this model was trained")
    if report.remote_note:
        typer.echo(f"  note: {report.remote_note}")
    if report.environment_changed:
        typer.echo("  note: uv.lock changed since that commit; the current environment was used")
    typer.echo("MATCH: the model's data and metrics were reproduced exactly" if report.match else "MISMATCH")
    if not report.match:
        raise typer.Exit(5)


@app.command()
def serve(
    version: Annotated[
        str, typer.Option("--version", help="Serve this version, pinned (default: follow champion).")
    ] = "",
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the champion over HTTP (POST /predict, GET /health, /ready, /model, docs at /docs).

    Follows the `champion` alias: a moved alias is picked up every MLPIPELINE_SERVE_POLL_SECONDS (10) or on
    POST /reload, without a restart. Limits: MLPIPELINE_SERVE_MAX_BATCH (1000 rows),
    MLPIPELINE_SERVE_MAX_BODY_BYTES (1 MiB). Set MLPIPELINE_SERVE_TOKEN to require a bearer token.

    Example: `mlpipeline serve --port 8000`, then
    `curl localhost:8000/predict -H 'content-type: application/json' -d '{"rows": [{...}]}'`.
    """
    import uvicorn
    from pydantic import ValidationError

    from mlpipeline.errors import ConfigError
    from mlpipeline.io import registry, tracking
    from mlpipeline.serving.app import ServeSettings, create_app
    from mlpipeline.serving.model import ModelHolder, registry_loader

    try:
        settings = ServeSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MLPIPELINE_SERVE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"server settings: {problems}") from exc
    tracking.configure()
    name = _model_name(model, params)
    follow = None if version else (lambda: registry.alias_version(name, registry.CHAMPION))
    holder = ModelHolder(registry_loader(name), follow, version or None)
    holder.watch(settings.poll_seconds)
    served = holder.current
    assert served is not None
    logger.info(
        "serving %s v%s on http://%s:%d (%s%s); docs at /docs",
        name,
        served.version,
        host,
        port,
        "following the champion alias" if follow else "pinned",
        ", bearer token required" if settings.token else "",
    )
    uvicorn.run(create_app(holder, settings), host=host, port=port, log_level="warning", access_log=access_log)


@app.command("setup-remote")
def setup_remote(
    url: Annotated[
        str, typer.Option(help="s3://bucket[/prefix] (default MLPIPELINE_REMOTE_URL, s3://dvc-store).")
    ] = "",
    endpoint: Annotated[str, typer.Option(help="S3 endpoint (default MLPIPELINE_S3_ENDPOINT; 'aws' for AWS).")] = "",
    name: Annotated[str, typer.Option(help="DVC remote name.")] = "storage",
    create_bucket: Annotated[bool, typer.Option(help="Create the bucket if it is missing.")] = True,
) -> None:
    """Configure the DVC remote (idempotent): URL and endpoint in .dvc/config, credentials in .dvc/config.local.

    Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment or .env), never from a file in git.
    """
    from mlpipeline.errors import ConfigError
    from mlpipeline.io import remote
    from mlpipeline.settings import env_settings

    settings = env_settings()
    if settings.aws_access_key_id is None or settings.aws_secret_access_key is None:
        raise ConfigError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment or .env, see .env.example)")
    chosen = endpoint or settings.mlpipeline_s3_endpoint or ""
    target = remote.S3Remote(
        name=name,
        url=url or settings.mlpipeline_remote_url,
        endpoint=None if chosen in ("", "aws") else chosen,
        access_key_id=settings.aws_access_key_id.get_secret_value(),
        secret_access_key=settings.aws_secret_access_key.get_secret_value(),
    )
    created = remote.ensure_bucket(target) if create_bucket else False
    remote.configure(target)
    logger.info(
        "DVC remote %r -> %s%s (%s); credentials in .dvc/config.local",
        name,
        target.url,
        f" at {target.endpoint}" if target.endpoint else "",
        "bucket created" if created else "bucket exists",
    )


@app.command()
def push(
    remote_name: Annotated[str, typer.Option("--remote", help="DVC remote (default: the default one).")] = "",
) -> None:
    """Upload DVC-tracked data and outputs to the remote (dvc push)."""
    from mlpipeline.io.remote import transfer

    logger.info("%s", transfer("push", remote_name or None))


@app.command()
def pull(
    remote_name: Annotated[str, typer.Option("--remote", help="DVC remote (default: the default one).")] = "",
) -> None:
    """Download DVC-tracked data and outputs from the remote (dvc pull)."""
    from mlpipeline.io.remote import transfer

    logger.info("%s", transfer("pull", remote_name or None))


@app.command()
def dagshub() -> None:
    """Use a DagsHub repository: its S3 endpoint as DVC remote `origin`, its MLflow server for tracking.

    Reads DAGSHUB_USER, DAGSHUB_TOKEN and DAGSHUB_REPO (owner/name, or just name for your own) from the
    environment or .env. The token goes only to .dvc/config.local and .env, both git-ignored.
    """
    from mlpipeline.io.dagshub import configure_dagshub
    from mlpipeline.settings import env_settings

    uri = configure_dagshub(env_settings())
    logger.info("DVC remote 'origin' and MLflow tracking (%s) now point at DagsHub; try `make push`", uri)


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


def _in_container_runtime(command: str) -> bool:
    """True when this stage must run in its container: MLPIPELINE_RUNTIME=docker and we are not inside one."""
    from mlpipeline.io.launcher import IN_CONTAINER, STAGES
    from mlpipeline.settings import env_settings

    return command in STAGES and not os.environ.get(IN_CONTAINER) and env_settings().mlpipeline_runtime == "docker"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    from typer.exceptions import TyperException

    configure_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and _in_container_runtime(args[0]):
            from mlpipeline.io.launcher import run_in_container

            return run_in_container(args[0], args[1:])
        app(args=args, prog_name="mlpipeline", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        logger.error("interrupted")
        return 130
    except TyperException as exc:  # usage errors: unknown command or option, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            logger.error("%s", exc.format_message())
        return exc.exit_code
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
