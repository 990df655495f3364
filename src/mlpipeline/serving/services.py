"""What the server's routes share, made once per app: the model holders, the A/B router, the metrics, the
prediction log and feedback store, the answers remembered for feedback, the shadow scorer; and their shutdown.

Each is configured from ``EnvSettings`` here and nowhere else, and handed to the routers
(:mod:`mlpipeline.serving.routes`), which hold no state of their own.
"""

import hmac
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from pydantic_core import to_json

from mlpipeline.monitoring.gauges import DriftCollector
from mlpipeline.monitoring.predictions import FeedbackStore, PredictionLog
from mlpipeline.serving.metrics import ServerMetrics
from mlpipeline.serving.model import LoadedModel, ModelHolder
from mlpipeline.serving.routing import RecentAnswers, RequestIds, Router, ShadowScorer, Split
from mlpipeline.settings import EnvSettings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a route may use; built by :meth:`build`, ended by :meth:`close`."""

    settings: EnvSettings
    holder: ModelHolder
    challenger: ModelHolder
    router: Router
    metrics: ServerMetrics
    log: PredictionLog | None
    feedback: FeedbackStore | None
    recent: RecentAnswers
    ids: RequestIds
    shadow: ShadowScorer = field(init=False)

    def __post_init__(self) -> None:
        self.shadow = ShadowScorer(self.score_shadow, self.settings.serve_ab_shadow_queue)
        self.metrics.watch_shadow(self.shadow.stats)

    @classmethod
    def build(cls, holder: ModelHolder, settings: EnvSettings, challenger: ModelHolder | None = None) -> "Services":
        metrics = ServerMetrics()
        metrics.registry.register(DriftCollector(Path(settings.drift_summary)))  # the last `mlpipeline monitor`
        log = prediction_log(settings)
        if log is not None:
            metrics.watch_log(log.stats)
        feedback = feedback_store(settings)
        recent = RecentAnswers(settings.serve_feedback_window)
        if feedback is not None:
            remember_logged(recent, settings)
        router = Router(Split(settings.serve_ab_mode, settings.serve_ab_share), settings.serve_ab_salt)
        challenger = challenger or follow_challenger(holder, settings)
        if router.split.mode != "off":
            challenger.refresh()
        challenger.watch(settings.serve_poll_seconds, active=lambda: router.split.mode != "off")
        return cls(settings, holder, challenger, router, metrics, log, feedback, recent, RequestIds())

    def close(self) -> None:
        """Stop following the challenger, finish the shadow scoring, then write what the log still holds."""
        self.challenger.stop()
        self.shadow.close()  # before the log: its answers go to the log
        if self.log is not None:  # a clean shutdown writes what is still queued
            self.log.close()

    def authorize(self, request: Request) -> None:
        """The bearer token check of the protected routes (none when ``MLPIPELINE_SERVE_TOKEN`` is unset)."""
        token = self.settings.serve_token
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def serving(self) -> str:
        """The version answering now (for the request metrics of routes that name none)."""
        model = self.holder.current
        return model.version if model is not None else "none"

    def taken_by_challenger(self, split: Split, request: Request) -> LoadedModel | None:
        """The challenger, when there is one and this request falls in its share (sticky by the key header)."""
        other = self.challenger.current
        if other is None or not self.router.takes(split, request.headers.get(self.settings.serve_ab_key_header)):
            return None
        return other

    def score_shadow(self, job: tuple[str, LoadedModel, list[Any], list[dict[str, Any]], bytes]) -> None:
        """The challenger's answer to a request the champion answered: timed, compared, remembered, logged."""
        request_id, model, rows, champion, body = job
        start = time.perf_counter()
        predictions = model.predict(model_input(model, rows))
        content = to_json(
            {"model": model.name, "version": model.version, "request_id": request_id, "predictions": predictions}
        )
        took = time.perf_counter() - start
        self.metrics.model_latency.labels("shadow", model.version).observe(took)
        self.metrics.count_shadow(model.version, champion, predictions)
        if self.feedback is not None:
            self.recent.add_shadow(request_id, content)
        if self.log is not None:
            self.log.record(took * 1000, body, content, len(rows), request_id, "shadow")


def prediction_log(settings: EnvSettings) -> PredictionLog | None:
    """The log ``MLPIPELINE_PREDICTION_LOG_*`` configure, or None when it is ``off``."""
    if settings.prediction_log_dir.strip().lower() in ("", "off", "none", "false", "0"):
        return None
    return PredictionLog(
        Path(settings.prediction_log_dir),
        sample=settings.prediction_log_sample,
        queue_size=settings.prediction_log_queue,
        max_file_bytes=settings.prediction_log_file_mb << 20,
        keep_files=settings.prediction_log_keep_files,
        database_url=settings.prediction_log_url.get_secret_value() if settings.prediction_log_url else None,
        keep_days=settings.prediction_log_keep_days,
    )


def feedback_store(settings: EnvSettings) -> FeedbackStore | None:
    """Where feedback is kept: beside the prediction log (its folder or its database); None when the log is off."""
    if settings.prediction_log_dir.strip().lower() in ("", "off", "none", "false", "0"):
        return None
    url = settings.prediction_log_url.get_secret_value() if settings.prediction_log_url else None
    return FeedbackStore(Path(settings.prediction_log_dir), database_url=url)


def remember_logged(recent: RecentAnswers, settings: EnvSettings) -> None:
    """Fill ``recent`` with the answers the prediction log holds from earlier processes (the newest
    ``MLPIPELINE_SERVE_FEEDBACK_WINDOW`` rows), so that labels arriving after a restart or a redeploy are taken.
    A log that cannot be read costs only that memory: the server starts, and says so."""
    from mlpipeline.monitoring.predictions import last_answers

    url = settings.prediction_log_url.get_secret_value() if settings.prediction_log_url else None
    directory = Path(settings.prediction_log_dir)
    if url is None and not directory.is_dir():
        return
    try:
        answers, labelled = last_answers(directory, recent.capacity, url)
    except Exception as exc:  # a database down, a file unreadable: never a reason not to serve
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "PostgreSQL (MLPIPELINE_PREDICTION_LOG_URL)" if url else str(directory)
        logger.warning(
            "feedback: cannot read earlier answers from the prediction log in %s (%s); labels for requests "
            "answered before this start will be unknown_request",
            where,
            reason,
        )
        return
    recent.restore(answers, labelled)
    if answers:
        logger.info("feedback: remembered %d earlier answers from the prediction log", len(recent))


def follow_challenger(holder: ModelHolder, settings: EnvSettings) -> ModelHolder:
    """A holder following the challenger alias of the champion's registered model; empty until first refreshed."""
    from mlpipeline.io import registry

    assert holder.current is not None
    name, alias = holder.current.name, settings.serve_ab_alias
    return ModelHolder(
        holder.load, lambda: registry.alias_version(name, alias), None, alias=alias, required=False, shape=holder.shape
    )


def model_input(model: LoadedModel, rows: list[Any]) -> Any:
    """Validated request rows as ``model`` takes them."""
    if model.takes_array:  # all numbers: straight into a float array (None -> NaN), no DataFrame
        return np.array([[row.__dict__[name] for name in model.features] for row in rows], dtype=np.float64)
    return model.frame([row.__dict__ for row in rows])
