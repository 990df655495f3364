"""``mlpipeline monitor``: compare the champion's recent served rows with its training data; report; react.

    $ mlpipeline monitor            # exit 0: no drift; 7: drift (see reports/drift/report.html)

1. The champion (or ``--version``) and its reference: the training sample logged with its run (no DVC needed),
   or the training split its lineage names in the DVC cache.
2. The newest ``monitor.window`` rows that version answered, from the prediction log (its folder, or the team
   stack's PostgreSQL when ``MLPIPELINE_PREDICTION_LOG_URL`` is set).
3. Each input and the prediction tested (:mod:`mlpipeline.monitoring.drift`); ``reports/drift/summary.json`` and
   ``report.html`` written (Evidently's report when ``make monitor-setup`` installed it, a plain table
   otherwise), and both logged to MLflow in a run of the experiment ``<experiment>-monitoring``.
4. On drift: ``monitor.retrain`` starts the pipeline here (``dvc repro``: the new model must still pass the
   promotion gate) or triggers the Airflow DAG; then the command exits 7. Drift never moves ``champion`` itself.
"""

from __future__ import annotations

import html
import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipeline.errors import EXIT_DRIFT, ConfigError, MlpipelineError, ServiceUnavailableError
from mlpipeline.monitoring.drift import DriftSummary, Kind
from mlpipeline.monitoring.reference import PREDICTION

if TYPE_CHECKING:
    import pandas as pd

    from mlpipeline.core.schema import Schema
    from mlpipeline.settings import EnvSettings, MonitorParams, Params

logger = logging.getLogger(__name__)

SUMMARY = "summary.json"
REPORT = "report.html"
REPORT_ENV = Path("monitoring/drift")
DAG_ID = "mlpipeline"


class DriftDetectedError(MlpipelineError):
    """The recent predictions drifted from the champion's training data (exit code 7)."""

    exit_code = EXIT_DRIFT

    def __init__(self, message: str, version: str | None = None) -> None:
        super().__init__(message)
        self.version = version  # the version whose predictions drifted


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str
    schema: Schema
    reference: pd.DataFrame


def load_reference(run_id: str, version_tags: dict[str, str], schema: Schema, model: Any) -> pd.DataFrame:
    """The reference of the model trained in ``run_id``: the logged artifact, else the training split its lineage
    names (from the DVC cache), with the model's predictions computed now."""
    import pandas as pd

    from mlpipeline.io import tracking
    from mlpipeline.monitoring import reference

    with tempfile.TemporaryDirectory(prefix="mlpipeline-reference-") as tmp:
        path = tracking.download_run_artifact(run_id, reference.ARTIFACT, Path(tmp))
        if path is not None:
            return pd.read_parquet(path, engine="pyarrow")
    train_md5 = version_tags.get("data.train.md5")
    if train_md5:
        from mlpipeline.io.files import read_table
        from mlpipeline.io.remote import cached_file

        cached = cached_file(train_md5)
        if cached is not None:
            return reference.build(read_table(cached, "preprocess", schema.csv_dtypes()), schema, model, seed=0)
    raise MlpipelineError(
        f"run {run_id} logged no drift reference ({reference.ARTIFACT}) and its training data (data.train.md5 "
        f"{train_md5 or 'not tagged'}) is not in this project's DVC cache: retrain (`make run`) to log one, "
        "or `dvc pull` the data it was trained on"
    )


def load_champion(name: str, version: str | None) -> Champion:
    """The version to watch (default: the ``champion`` alias), its schema and its drift reference."""
    from mlpipeline.core.schema import Schema
    from mlpipeline.io import registry, tracking

    target = version or registry.alias_version(name, registry.CHAMPION)
    if target is None:
        raise MlpipelineError(f"{name!r} has no champion to monitor: run the pipeline first (`make run`)")
    model, meta = tracking.load_model_with_meta(f"models:/{name}/{target}")
    metadata = meta.get("metadata") or {}
    if "features" not in metadata:
        raise MlpipelineError(f"{name} v{target} records no input schema: retrain it (`make run`) to monitor it")
    schema = Schema.model_validate(metadata)
    with tracking.translate_errors(f"reading {name} v{target}"):
        mv = tracking.client().get_model_version(name, target)
    frame = load_reference(str(mv.run_id), dict(mv.tags), schema, model)
    return Champion(name, str(target), str(mv.run_id), schema, frame)


def served_rows(settings: EnvSettings, log_dir: Path | None, champion: Champion, rows: int) -> list[dict[str, Any]]:
    """The newest ``rows`` rows ``champion`` answered in the prediction log: ``log_dir``, else PostgreSQL when
    configured, else the log's folder."""
    from mlpipeline.monitoring.predictions import newest_rows

    if log_dir is None and settings.prediction_log_url is not None:
        try:
            url = settings.prediction_log_url.get_secret_value()
            return newest_rows(Path(), champion.name, champion.version, rows, url)
        except Exception as exc:  # psycopg2's errors carry no secrets in their first line, but say less anyway
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ServiceUnavailableError(
                f"cannot read the prediction log from PostgreSQL (MLPIPELINE_PREDICTION_LOG_URL): {first}"
            ) from exc
    directory = log_dir or Path(settings.prediction_log_dir)
    if not directory.is_dir():
        raise MlpipelineError(
            f"no prediction log at {directory}: serve the champion first (`make serve`), or point "
            "--log / MLPIPELINE_PREDICTION_LOG_DIR at the server's log folder"
        )
    return newest_rows(directory, champion.name, champion.version, rows)


def column_kinds(schema: Schema) -> dict[str, Kind]:
    """Each input's kind, and the prediction's: a class name is a category, a regression value a number."""
    kinds: dict[str, Kind] = {name: info.kind for name, info in schema.features.items()}
    kinds[PREDICTION] = "categorical" if schema.task == "classification" else "numeric"
    return kinds


def check(champion: Champion, rows: list[dict[str, Any]], params: MonitorParams) -> tuple[DriftSummary, pd.DataFrame]:
    """The verdict on the newest ``params.window`` rows ``champion`` answered, and those rows as a frame."""
    from mlpipeline.monitoring.drift import compare, served_frame

    answered = [r for r in rows if r.get("model") == champion.name and str(r.get("version")) == champion.version]
    recent = answered[-params.window :]
    if len(recent) < params.min_rows:
        raise MlpipelineError(
            f"only {len(recent)} logged rows answered by {champion.name} v{champion.version}: monitor.min_rows is "
            f"{params.min_rows}. Wait for more traffic, or lower monitor.min_rows"
        )
    kinds = column_kinds(champion.schema)
    current = served_frame(recent, kinds, champion.schema.task)
    summary = compare(champion.reference, current, kinds, params)
    times = [str(r.get("time", "")) for r in recent]
    summary.context = {
        "model": champion.name,
        "version": champion.version,
        "run_id": champion.run_id,
        "task": champion.schema.task,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "window": {"rows": len(recent), "first": min(times), "last": max(times)},
        "tests": {"numeric": params.numeric.model_dump(), "categorical": params.categorical.model_dump()},
    }
    return summary, current


def report_python(root: Path) -> Path | None:
    """The report environment's interpreter (``make monitor-setup``), or None when it is not installed."""
    override = os.environ.get("MLPIPELINE_DRIFT_REPORT_PYTHON")
    python = Path(override) if override else root / REPORT_ENV / ".venv" / "bin" / "python"
    return python if python.is_file() else None


def evidently_report(
    champion: Champion, current: pd.DataFrame, params: MonitorParams, out: Path, root: Path
) -> dict[str, Any] | None:
    """Draw Evidently's HTML report into ``out``; its per-column scores, or None when it is not installed or
    fails (the monitor's own report stands in; the verdict never depends on it)."""
    python = report_python(root)
    if python is None:
        logger.info("plain drift report: `make monitor-setup` installs Evidently for the full one")
        return None
    kinds = column_kinds(champion.schema)
    with tempfile.TemporaryDirectory(prefix="mlpipeline-drift-") as tmp:
        folder = Path(tmp)
        champion.reference[list(kinds)].to_parquet(folder / "reference.parquet", index=False)
        current[list(kinds)].to_parquet(folder / "current.parquet", index=False)
        config = {
            "reference": str(folder / "reference.parquet"),
            "current": str(folder / "current.parquet"),
            "numeric_columns": [n for n, k in kinds.items() if k == "numeric"],
            "categorical_columns": [n for n, k in kinds.items() if k == "categorical"],
            "numeric_test": params.numeric.test,
            "numeric_threshold": params.numeric.threshold,
            "categorical_test": params.categorical.test,
            "categorical_threshold": params.categorical.threshold,
            "drift_share": params.drift_share,
            "html": str(out / REPORT),
            "json": str(folder / "evidently.json"),
            "mlpipeline_src": str(Path(__file__).resolve().parents[2]),  # the tests Evidently runs are ours
        }
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        try:
            done = subprocess.run(
                [str(python), str(root / REPORT_ENV / "report.py"), str(folder / "config.json")],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("Evidently's report could not run (%s): writing the plain report", exc)
            return None
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            logger.warning("Evidently's report failed (%s): writing the plain report", reason)
            return None
        result: dict[str, Any] = json.loads((folder / "evidently.json").read_text(encoding="utf-8"))
        return result


def plain_report(summary: DriftSummary) -> str:
    """A self-contained HTML table of the verdicts (when Evidently is not installed)."""
    data = summary.to_json()
    rows = "".join(
        "<tr{cls}><td>{column}</td><td>{kind}</td><td>{test}</td><td>{score}</td><td>{threshold}</td>"
        "<td>{verdict}</td><td>{note}</td></tr>".format(
            cls=' class="drift"' if c["drifted"] else "",
            verdict="drift" if c["drifted"] else "ok",
            **{k: html.escape(str(v)) for k, v in c.items()},
        )
        for c in data["columns"]
    )
    title = f"Drift of {data.get('model', '?')} v{data.get('version', '?')}"
    verdict = "DRIFT" if data["drifted"] else "no drift"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ddd}.drift{background:#fdd}"
        f"</style></head><body><h1>{html.escape(title)}: {verdict}</h1>"
        f"<p>{len(data['drifted_columns'])} of {len(data['columns'])} columns drifted "
        f"(share {data['drifted_share']:.2f}; drift from {data['drift_share']:.2f}); "
        f"{data['current_rows']} recent rows against {data['reference_rows']} training rows. "
        f"Checked {html.escape(str(data.get('checked_at', '')))}. "
        "<code>make monitor-setup</code> installs Evidently for the full report.</p>"
        "<table><tr><th>column</th><th>kind</th><th>test</th><th>score</th><th>threshold</th><th>verdict</th>"
        f"<th>note</th></tr>{rows}</table></body></html>"
    )


def log_to_mlflow(summary: DriftSummary, out: Path, experiment: str) -> str:
    """A run in ``<experiment>-monitoring`` with each column's score, the verdict, the summary and the report."""
    import re

    import mlflow

    from mlpipeline.io import tracking

    data = summary.to_json()
    tags = {"mlpipeline.monitor.model": data["model"], "mlpipeline.monitor.version": data["version"]}
    with tracking.start_run(f"{experiment}-monitoring", tags=tags) as run, tracking.translate_errors("logging drift"):
        mlflow.log_params({"model": data["model"], "version": data["version"], "window_rows": data["current_rows"]})
        metrics = {"drifted": float(summary.drifted), "drifted_share": summary.share}
        for column in summary.columns:
            safe = re.sub(r"[^A-Za-z0-9_\-. /]", "_", column.column)
            metrics[f"drift.{safe}.score"] = column.score if column.score == column.score else -1.0
            metrics[f"drift.{safe}.drifted"] = float(column.drifted)
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(out / SUMMARY), artifact_path="drift")
        mlflow.log_artifact(str(out / REPORT), artifact_path="drift")
        return str(run.info.run_id)


def retrain(how: str, settings: EnvSettings, summary: DriftSummary, root: Path) -> str:
    """Start a retraining run; say what was started. The new model still has to pass the promotion gate."""
    if how == "pipeline":
        from mlpipeline.tools import dvc_command

        command = [dvc_command(), "repro"]
        logger.info("drift: retraining with `dvc repro` (the gate decides whether the new model becomes champion)")
        try:
            done = subprocess.run(command, cwd=root, timeout=settings.mlpipeline_subprocess_timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MlpipelineError(f"drift detected, and the retraining run could not finish: {exc}") from exc
        if done.returncode != 0:
            raise MlpipelineError(
                f"drift detected, and the retraining run (`dvc repro`) failed with exit code {done.returncode}: "
                "see its output above; the champion is unchanged"
            )
        return "retrained with `dvc repro`"
    return trigger_dag(settings, summary)


def trigger_dag(settings: EnvSettings, summary: DriftSummary) -> str:
    """Trigger the Airflow DAG through Airflow's REST API (``MLPIPELINE_AIRFLOW_URL``, and a user and password
    when the API asks for a token)."""
    import urllib.error
    import urllib.request

    if not settings.airflow_url:
        raise ConfigError("monitor.retrain is airflow: set MLPIPELINE_AIRFLOW_URL (e.g. http://127.0.0.1:8080)")
    base = settings.airflow_url.rstrip("/")

    def call(path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        request = urllib.request.Request(base + path, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            raise MlpipelineError(
                f"drift detected; Airflow refused to start {DAG_ID} at {base}{path}: HTTP {exc.code} "
                f"{exc.read()[:300].decode(errors='replace')}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceUnavailableError(f"drift detected; Airflow at {base} is unreachable: {exc}") from exc

    token = None
    if settings.airflow_username:
        password = settings.airflow_password.get_secret_value() if settings.airflow_password else ""
        token = call("/auth/token", {"username": settings.airflow_username, "password": password})["access_token"]
    run_id = f"drift__{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_v{summary.context.get('version', '')}"
    note = f"retraining: drift in {', '.join(summary.drifted_columns)}"
    started = call(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {"commit": ""}, "note": note},
        token,
    )
    return f"triggered Airflow DAG {DAG_ID} run {started.get('dag_run_id', run_id)}"


def monitor(
    params: Params,
    settings: EnvSettings,
    out: Path,
    *,
    version: str | None = None,
    model: str | None = None,
    log_dir: Path | None = None,
    retrain_with: str | None = None,
    retrained_for: str | None = None,
) -> DriftSummary:
    """Check, write and log the verdict; on drift retrain as configured (unless ``retrained_for`` names the
    version watched: a retraining run for its drift was started already) and raise :class:`DriftDetectedError`."""
    from mlpipeline.io import tracking
    from mlpipeline.io.files import write_json
    from mlpipeline.settings import project_root

    root = project_root()
    tracking.configure()
    name = model or params.model_name(params.task_hint())
    champion = load_champion(name, version)
    summary, current = check(champion, served_rows(settings, log_dir, champion, params.monitor.window), params.monitor)
    out.mkdir(parents=True, exist_ok=True)
    evidently = evidently_report(champion, current, params.monitor, out, root)
    if evidently is None:
        (out / REPORT).write_text(plain_report(summary), encoding="utf-8")
    summary.context["report"] = "evidently" if evidently is not None else "plain"
    if evidently is not None:
        summary.context["evidently"] = evidently
    write_json(out / SUMMARY, summary.to_json())
    run_id = log_to_mlflow(summary, out, params.experiment_name())
    where = f"{out / SUMMARY}, {out / REPORT} (MLflow run {run_id})"
    if not summary.drifted:
        logger.info(
            "no drift: %d of %d columns drifted over %d recent rows of %s v%s; %s",
            len(summary.drifted_columns),
            len(summary.columns),
            summary.current_rows,
            champion.name,
            champion.version,
            where,
        )
        return summary
    how = retrain_with or params.monitor.retrain
    if how == "none":
        started = "no retraining (monitor.retrain: none)"
    elif retrained_for == champion.version:
        started = f"no new retraining: one was started when this drift of v{champion.version} was first found"
    else:
        started = retrain(how, settings, summary, root)
    raise DriftDetectedError(
        f"drift: {', '.join(summary.drifted_columns)} ({len(summary.drifted_columns)} of {len(summary.columns)} "
        f"columns) in the last {summary.current_rows} rows {champion.name} v{champion.version} answered; "
        f"{started}; champion unchanged. See {where}",
        champion.version,
    )


def watch(
    every: float,
    check_once: Callable[[str | None], DriftSummary],
    stop: threading.Event | None = None,
    rounds: int | None = None,
) -> None:
    """Run ``check_once`` every ``every`` seconds until SIGTERM (or ``stop`` is set, or ``rounds`` ran).

    A check that fails (a service down, too few rows, drift) is logged and the next one comes on time: a watcher
    that exits on the first outage watches nothing. A retraining run starts once per drift episode: each check
    gets the version the previous check found drifting (None if it found none), and :func:`monitor` starts no
    second run for the same version's drift, so one drift is not a retraining run every period.
    """
    import signal

    terminated = False

    def on_term(*_: Any) -> None:  # sets a flag only: a handler must not take locks the loop may hold
        nonlocal terminated
        terminated = True

    def stopped() -> bool:
        return terminated or (stop is not None and stop.is_set())

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    drifting: str | None = None  # the version the last check found drifting
    done = 0
    logger.info("checking for drift every %.0f s (SIGTERM or Ctrl-C stops)", every)
    try:
        while not stopped():
            try:
                summary = check_once(drifting)
                drifting = str(summary.context.get("version")) if summary.drifted else None
            except DriftDetectedError as exc:
                logger.error("%s", exc)
                drifting = exc.version
            except MlpipelineError as exc:
                logger.error("%s; next check in %.0f s", exc, every)
            done += 1
            if rounds is not None and done >= rounds:
                return
            deadline = time.monotonic() + every
            while not stopped() and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(left, 0.5))
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    logger.info("stopped watching for drift")
