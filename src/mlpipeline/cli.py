"""The ``mlpipeline`` command: one subcommand per pipeline stage, plus tools around them.

DVC calls the stages (see dvc.yaml); you can too, from the project root:

    $ mlpipeline ingest            # data/raw/<ingest.name>.csv from params.yaml's ingest section
    $ mlpipeline validate          # every path comes from params.yaml (see mlpipeline.paths)
    $ mlpipeline --help

Every failure is one line naming what failed and what to do, and an exit code from the table in
:mod:`mlpipeline.errors` (the README's is checked against it); MLPIPELINE_DEBUG=1 also shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

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


def _stage(stage: str, params: Path) -> None:
    from mlpipeline.stages import execute

    code = execute(stage, params)
    if code:
        raise typer.Exit(code)


@app.command()
def ingest(params: ParamsOption = Path("params.yaml")) -> None:
    """Write data/raw/<ingest.name>.csv from ingest.source (sklearn:<name>, or a file under data/sources/)."""
    _stage("ingest", params)


@app.command()
def validate(params: ParamsOption = Path("params.yaml")) -> None:
    """Check the raw data against its data contract; write reports/data_validation.json."""
    _stage("validate", params)


@app.command()
def preprocess(params: ParamsOption = Path("params.yaml")) -> None:
    """Stratified split into data/processed/train and test (.csv, or .parquet by preprocess.format)."""
    _stage("preprocess", params)


@app.command()
def train(params: ParamsOption = Path("params.yaml")) -> None:
    """Fit the model, log it to MLflow and register a new version; write models/."""
    _stage("train", params)


@app.command()
def evaluate(params: ParamsOption = Path("params.yaml")) -> None:
    """Score the registered model on the test set; write metrics/ and plots/; log to train's MLflow run."""
    _stage("evaluate", params)


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
        promote_version(load_params(params).promote, _model_name(model, params), version, cached_file)
    elif after_experiment:
        from mlpipeline.runtimes.pipeline import regate_experiment_verdict

        code = regate_experiment_verdict(params)
        if code:
            raise typer.Exit(code)
    else:
        _stage("promote", params)


HEADLINE = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")
RefArgument = Annotated[str, typer.Argument(help="`champion`, `previous-champion` or a version number.")]
ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="Registered model name (default: train.registered_model, else <ingest.name>-classifier or -regressor).",
    ),
]


def _model_name(model: str, params: Path) -> str:
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
def retire(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the version).")],
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Take `champion` away from a version that turned out wrong: no champion until a run promotes another."""
    from mlpipeline.io import registry, tracking

    tracking.configure()
    name = _model_name(model, params)
    retired = registry.retire(name, reason)
    logger.info(
        "retired %s v%s (%s): %s has no champion now; `make run` promotes the next version that passes the gate "
        "(never v%s again)",
        name,
        retired,
        reason,
        name,
        retired,
    )


@app.command()
def reproduce(
    ref: RefArgument = "champion",
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Rebuild a model version from exactly what made it (its commit and recorded params) and compare.

    MATCH (exit 0): rebuilt, data, model file and metrics identical. MISMATCH (exit 5): rebuilt, something
    differs (named). UNREPRODUCIBLE (exit 6): it cannot be rebuilt faithfully (uncommitted changes, params not
    recorded, data missing; each named).
    """
    from mlpipeline.errors import EXIT_MISMATCH, EXIT_UNREPRODUCIBLE
    from mlpipeline.io import tracking
    from mlpipeline.runtimes.reproduce import reproduce as rebuild

    tracking.configure()
    report = rebuild(_model_name(model, params), ref)
    typer.echo(f"{report.model} v{report.version} from commit {report.commit[:12]}:")
    width = max((len(c.name) for c in report.comparisons), default=0)
    for c in report.comparisons:
        status = "ok     " if c.match else "DIFFERS"
        typer.echo(f"  {status} {c.name:{width}}  recorded {c.recorded}  reproduced {c.reproduced}")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    for reason in report.reasons:
        typer.echo(f"  {report.verdict.lower()}: {reason}")
    if report.verdict == "MATCH":
        typer.echo("MATCH: rebuilt from its commit and recorded params; data, model and metrics are identical")
        return
    typer.echo(report.verdict)
    raise typer.Exit(EXIT_MISMATCH if report.verdict == "MISMATCH" else EXIT_UNREPRODUCIBLE)


@app.command()
def monitor(
    version: Annotated[str, typer.Option("--version", help="Watch this version (default: the champion).")] = "",
    model: ModelOption = "",
    log: Annotated[
        Path | None,
        typer.Option("--log", help="The prediction log folder (default: MLPIPELINE_PREDICTION_LOG_URL, else _DIR)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where summary.json and report.html go.")] = Path("reports/drift"),
    retrain: Annotated[
        str,
        typer.Option("--retrain", help="On drift start none|pipeline|airflow (default: monitor.retrain)."),
    ] = "",
    every: Annotated[
        float,
        typer.Option("--every", min=0, help="Check again every this many seconds until stopped (0: once)."),
    ] = 0,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Compare the champion's recent served rows with its training data, per input and for the prediction.

    Writes a JSON summary and an HTML report, logs both to MLflow; exit 7 on drift (after starting a retraining
    run if monitor.retrain or --retrain asks for one). Drift never moves `champion`: a new model passes the gate.
    With --every it keeps watching (the compose `monitor` service): a failed check is logged, not fatal;
    params.yaml is read again for each check; a retraining run starts once per drift episode.
    """
    from mlpipeline.monitoring.monitor import monitor as check
    from mlpipeline.monitoring.monitor import watch
    from mlpipeline.settings import env_settings, load_params

    if retrain not in ("", "none", "pipeline", "airflow"):
        raise typer.BadParameter(f"--retrain {retrain!r}: use none, pipeline or airflow")

    def once(drifting: str | None = None) -> Any:
        return check(
            load_params(params),
            env_settings(),
            out,
            version=version or None,
            model=_model_name(model, params),
            log_dir=log,
            retrain_with=retrain or None,
            retrained_for=drifting,
        )

    if every > 0:
        watch(every, once)
    else:
        once()


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

    from mlpipeline.io import registry, tracking
    from mlpipeline.serving.app import create_app
    from mlpipeline.serving.model import ModelHolder, registry_loader
    from mlpipeline.serving.transport import protocol
    from mlpipeline.settings import env_settings

    settings = env_settings()
    tracking.configure()
    name = _model_name(model, params)
    follow = None if version else (lambda: registry.alias_version(name, registry.CHAMPION))
    holder = ModelHolder(registry_loader(name), follow, version or None)
    holder.watch(settings.serve_poll_seconds)
    served = holder.current
    assert served is not None
    logger.info(
        "serving %s v%s on http://%s:%d (%s%s); docs at /docs",
        name,
        served.version,
        host,
        port,
        "following the champion alias" if follow else "pinned",
        ", bearer token required" if settings.serve_token else "",
    )
    uvicorn.run(
        create_app(holder, settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        http=protocol(settings.serve_header_timeout, settings.serve_body_timeout),
        limit_concurrency=settings.serve_max_connections,
    )


def _register_adapt_commands() -> None:
    from mlpipeline.adapt.commands import commands, new_app

    for command in commands.registered_commands:
        app.registered_commands.append(command)
    app.add_typer(new_app, name="new")


_register_adapt_commands()

ab_app = typer.Typer(
    help="A/B and shadow serving: how the challenger compares with the champion.", no_args_is_help=True
)
app.add_typer(ab_app, name="ab")


@ab_app.command("report")
def ab_report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    log_dir: Annotated[
        str, typer.Option("--log-dir", help="The prediction log's folder (default MLPIPELINE_PREDICTION_LOG_DIR).")
    ] = "",
    min_labels: Annotated[int, typer.Option(min=1, help="Labelled rows each version needs for a verdict.")] = 30,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.9999, help="Confidence of intervals and verdict.")] = 0.95,
) -> None:
    """Per version: requests, share, latency p50/p95, labelled rows, accuracy (Wilson interval) or MAE; then
    which is better, with its test and p-value (shadow: also how often the two agree).

    Reads the prediction log and the feedback beside it (MLPIPELINE_PREDICTION_LOG_URL: from PostgreSQL).
    Exit 1 when there is nothing to compare or too little feedback for a verdict.

    Example: `mlpipeline ab report`, `mlpipeline ab report --json --min-labels 100`.
    """
    import json

    from mlpipeline.errors import EXIT_ERROR
    from mlpipeline.monitoring.ab import build_report, load_served, render
    from mlpipeline.settings import env_settings

    settings = env_settings()
    url = settings.prediction_log_url.get_secret_value() if settings.prediction_log_url and not log_dir else None
    rows, feedback = load_served(Path(log_dir or settings.prediction_log_dir), url)
    report = build_report(rows, feedback, min_labels=min_labels, confidence=confidence)
    typer.echo(json.dumps(report.as_dict(), indent=2) if as_json else render(report))
    if not report.enough:
        logger.error("%s", report.message)
        raise typer.Exit(EXIT_ERROR)


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
    from mlpipeline.io import remote

    target = remote.remote_from_env(url, endpoint, name)
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


@app.command("airflow-spec")
def airflow_spec(
    check: Annotated[bool, typer.Option("--check", help="Only check that the committed file is fresh.")] = False,
) -> None:
    """Write airflow/dags/pipeline.json, the stage graph the Airflow DAG reads, from dvc.yaml (as `dvc dag`)."""
    from mlpipeline.runtimes.airflow import SPEC, write_spec

    fresh = write_spec(Path.cwd(), check=check)
    logger.info("%s %s dvc.yaml's stage graph", SPEC, "matches" if fresh else "now matches")


@app.command()
def task(
    stage: Annotated[str, typer.Argument(help="The dvc.yaml stage to run.")],
    commit: Annotated[str, typer.Option(help="Check out this commit first (the DAG run's); default: as is.")] = "",
) -> None:
    """One Airflow task, in this workspace: at --commit, `dvc repro --pull STAGE`, then push its outputs and
    run-cache to the DVC remote (configured from AWS_* and MLPIPELINE_REMOTE_URL/S3_ENDPOINT when set)."""
    from mlpipeline.runtimes.airflow import run_task

    done = run_task(stage, commit)
    logger.info(
        "task %s done%s%s",
        stage,
        f" at {done['commit'][:12]}" if done["commit"] else "",
        ", outputs and run-cache pushed" if done["remote"] else " (no DVC remote: nothing pushed)",
    )


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
        _stage(stage, params)

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    from typer.exceptions import TyperException

    from mlpipeline.console import configure_logging, guarded
    from mlpipeline.errors import EXIT_INTERRUPTED
    from mlpipeline.tools import own_environment_first

    configure_logging()
    own_environment_first()
    args = list(sys.argv[1:] if argv is None else argv)
    add_stage_commands(Path.cwd())

    def work() -> int | None:
        try:
            # Without standalone mode, click returns the code of a `typer.Exit` instead of raising it.
            code = app(args=args, prog_name="mlpipeline", standalone_mode=False)
        except typer.Exit as exc:
            return exc.exit_code
        except typer.Abort:
            logger.error("interrupted")
            return EXIT_INTERRUPTED
        except TyperException as exc:  # usage errors: unknown command or option, bad value
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                logger.error("%s", exc.format_message())
            return exc.exit_code
        return code if isinstance(code, int) else None

    return guarded(work)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
