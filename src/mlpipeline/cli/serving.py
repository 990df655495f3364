"""Serving the champion and watching it: ``serve``, ``monitor`` (drift), ``ab report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlpipeline.cli.base import ModelOption, ParamsOption, app, logger, model_name


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
            model=model_name(model, params),
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
    name = model_name(model, params)
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
