"""The HTTP API over the champion: typed requests from the model's input schema, fast answers, clear 4xx.

    $ curl -s localhost:8000/predict -H 'content-type: application/json' \\
        -d '{"rows": [{"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}]}'
    {"model":"iris-classifier","version":"3","predictions":[{"label":"setosa","class_id":0,"probabilities":{...}}]}

Inputs are typed from the model's schema: numbers, categories (a value outside the contract's categories is a
422 naming the field and the allowed values), and ``null`` where the contract allows a missing value (the
model imputes it). A regression model answers ``{"value": ...}`` per row.

Routes: ``POST /predict``, ``GET /health`` (liveness), ``GET /ready`` (a model is loaded), ``GET /model``
(name, version, run, lineage), ``POST /reload`` (check the champion alias now), ``GET /metrics`` (Prometheus:
requests, errors and latency per route and model version, rows predicted), OpenAPI docs at ``/docs``.

Every answer carries its request id (``request_id`` and the ``X-Request-Id`` header). A/B and shadow serving
(:mod:`mlpipeline.serving.routing`): ``GET /ab`` shows the split and the challenger, ``POST /ab`` changes the
split while serving; ``POST /feedback`` takes labels for earlier request ids:

    $ curl -s -X POST localhost:8000/ab -H 'content-type: application/json' -d '{"mode": "ab", "share": 0.2}'
    $ curl -s -X POST localhost:8000/feedback -H 'content-type: application/json' \\
        -d '{"items": [{"request_id": "9f3ac2e1-12", "row": 0, "label": "setosa"}]}'
    {"stored":1,"items":[{"request_id":"9f3ac2e1-12","row":0,"status":"stored"}]}
"""

import contextlib
import hmac
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlpipeline.errors import ServiceUnavailableError
from mlpipeline.monitoring.gauges import DriftCollector
from mlpipeline.monitoring.predictions import FeedbackStore, PredictionLog
from mlpipeline.serving.metrics import ANSWERED_BY, CONTENT_TYPE, MetricsMiddleware, ServerMetrics
from mlpipeline.serving.model import LoadedModel, ModelHolder
from mlpipeline.serving.requests import BodyLimit, StrictJSONRoute, http_error, validation_error
from mlpipeline.serving.routing import Mode, RecentAnswers, RequestIds, Router, ShadowScorer, Split
from mlpipeline.settings import EnvSettings, env_settings

logger = logging.getLogger(__name__)

# Models compute in float32 (as scikit-learn's trees do): larger magnitudes are not finite numbers to them.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class Prediction(BaseModel):
    label: str
    class_id: int
    probabilities: dict[str, float]


class ValuePrediction(BaseModel):
    value: float


class PredictResponse(BaseModel):
    model: str
    version: str
    request_id: str = Field(description="this answer's id (also the X-Request-Id header), for POST /feedback")
    predictions: list[Prediction] | list[ValuePrediction]


class SplitChange(BaseModel):
    """A new split; what is left out stays as it is."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"mode": "ab", "share": 0.2}]}
    )
    mode: Mode | None = Field(default=None, description="off (champion only), ab or shadow")
    share: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False, description="0 to 1")


class ABStatus(BaseModel):
    mode: Mode
    share: float
    effective: str = Field(description="what happens now: champion only, ab or shadow")
    alias: str
    key_header: str
    champion: str
    challenger: str | None
    challenger_error: str | None
    shadow: dict[str, int]


FeedbackOutcome = Literal["stored", "unknown_request", "row_out_of_range", "already_labelled"]


class FeedbackResult(BaseModel):
    request_id: str
    row: int
    status: FeedbackOutcome


class FeedbackResponse(BaseModel):
    stored: int
    items: list[FeedbackResult]


class ModelInfo(BaseModel):
    name: str
    version: str
    run_id: str
    task: str
    features: list[str]
    labels: dict[str, str]
    follows_alias: bool
    lineage: dict[str, str]
    reload_error: str | None


class Status(BaseModel):
    status: str
    version: str | None = None


def _row_fields(model: LoadedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request row's fields (name -> type and constraints) and an example row, from the model's schema."""
    fields: dict[str, Any] = {}
    example: dict[str, Any] = {}
    infos = model.schema.features if model.schema is not None else dict.fromkeys(model.features)
    for name, info in infos.items():
        # A column with gaps in training may be null or left out (the model imputes it); any other is required.
        nullable = info is not None and info.nullable
        optional: dict[str, Any] = {"default": None} if nullable else {}
        gaps = " or null (missing: the model imputes it)" if nullable else ""
        source = info.source_name if info is not None and info.source_name not in infos else None
        if source:  # the data file's own name is accepted too (never another feature's name)
            optional["validation_alias"] = AliasChoices(name, source)
        also = f"; also accepted as {source!r}, the data's own name" if source else ""
        if info is not None and info.kind == "categorical":
            categories = tuple(info.categories or ())
            kind: Any = Literal[categories]
            described = Field(description=f"feature '{name}': one of {list(categories)}{gaps}{also}", **optional)
            example[name] = categories[0]
        else:
            kind = float
            described = Field(
                allow_inf_nan=False,
                ge=-FLOAT32_MAX,
                le=FLOAT32_MAX,
                description=f"feature '{name}' (a number{gaps}){also}",
                **optional,
            )
            example[name] = 1.0
        fields[name] = (kind | None if nullable else kind, described)
    return fields, example


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


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema says); "3" and true stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class FeedbackItem(BaseModel):
    """One labelled row; the truth field (``label`` or ``value``) is added from the model (:func:`_feedback_item`)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    request_id: str = Field(min_length=1, max_length=100, description="the answer's request id (X-Request-Id)")
    row: Annotated[int, BeforeValidator(_whole_number)] = Field(
        default=0, ge=0, description="the row's place in that request's batch"
    )


def _truth_field(first: LoadedModel) -> dict[str, Any]:
    """The feedback item's truth: a label (one of the model's, so a wrong one is a 422) or, for regression, a
    finite number ``value``."""
    if first.task == "regression":
        return {"value": (float, Field(allow_inf_nan=False, description="the true value"))}
    labels = tuple(first.labels.get(int(c), str(c)) for c in first.predictor.classes_)
    return {"label": (Literal[labels], Field(description=f"the true label: one of {list(labels)}"))}


def create_app(holder: ModelHolder, settings: EnvSettings | None = None, challenger: ModelHolder | None = None) -> Any:
    """The FastAPI application serving ``holder``'s model; request fields come from its input schema.

    ``challenger`` (default: one following ``MLPIPELINE_SERVE_AB_ALIAS`` of the same registered model) answers
    or shadows a share of requests when ``MLPIPELINE_SERVE_AB_MODE`` (or ``POST /ab``) says so.
    """
    settings = settings or env_settings()
    first = holder.current
    assert first is not None
    row_fields, example_row = _row_fields(first)
    infos = first.schema.features.values() if first.schema is not None else []
    aliased = any(info.source_name for info in infos)  # rows may name a feature as the data's file does
    Row = create_model("Row", __config__=ConfigDict(extra="forbid", strict=True), **row_fields)
    example: dict[str, Any] = {"rows": [example_row]}

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
        rows: Annotated[list[Row], Field(min_length=1, max_length=settings.serve_max_batch)]

    Item = create_model("LabelledRow", __base__=FeedbackItem, **_truth_field(first))

    class FeedbackRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: Annotated[list[Item], Field(min_length=1, max_length=settings.serve_max_batch)]

    token = settings.serve_token.get_secret_value().encode() if settings.serve_token else None

    def authorize(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    metrics = ServerMetrics()
    metrics.registry.register(DriftCollector(Path(settings.drift_summary)))  # the last `mlpipeline monitor`
    log = prediction_log(settings)
    if log is not None:
        metrics.watch_log(log.stats)
    feedback = feedback_store(settings)
    recent = RecentAnswers(settings.serve_feedback_window)
    if feedback is not None:
        remember_logged(recent, settings)
    ids = RequestIds()
    router = Router(Split(settings.serve_ab_mode, settings.serve_ab_share), settings.serve_ab_salt)
    challenger = challenger or follow_challenger(holder, settings)
    if router.split.mode != "off":
        challenger.refresh()
    challenger.watch(settings.serve_poll_seconds, active=lambda: router.split.mode != "off")
    key_header = settings.serve_ab_key_header

    def score_shadow(job: tuple[str, LoadedModel, list[Any], list[dict[str, Any]], bytes]) -> None:
        """The challenger's answer to a request the champion answered: timed, compared, remembered, logged."""
        request_id, model, rows, champion, body = job
        start = time.perf_counter()
        predictions = model.predict(model_input(model, rows))
        content = to_json(
            {"model": model.name, "version": model.version, "request_id": request_id, "predictions": predictions}
        )
        took = time.perf_counter() - start
        metrics.model_latency.labels("shadow", model.version).observe(took)
        metrics.count_shadow(model.version, champion, predictions)
        if feedback is not None:
            recent.add_shadow(request_id, content)
        if log is not None:
            log.record(took * 1000, body, content, len(rows), request_id, "shadow")

    shadow = ShadowScorer(score_shadow, settings.serve_ab_shadow_queue)
    metrics.watch_shadow(shadow.stats)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        yield
        challenger.stop()
        shadow.close()  # before the log: its answers go to the log
        if log is not None:  # a clean shutdown writes what is still queued
            log.close()

    app = FastAPI(
        lifespan=lifespan,
        title="mlpipeline model server",
        version="1",
        description=f"Predictions of `{first.name}` ({'champion' if holder.follows_alias else 'a pinned version'}).",
    )
    app.router.route_class = StrictJSONRoute  # a body that is not JSON is a 422 saying why (before the routes)
    app.state.row_names = [*row_fields, *(info.source_name for info in infos if info.source_name)]
    protected = [Depends(authorize)]
    unauthorized: dict[int | str, dict[str, Any]] = {401: {"description": "missing or wrong bearer token"}}

    def serving() -> str:
        model = holder.current
        return model.version if model is not None else "none"

    def taken_by_challenger(split: Split, request: Request) -> LoadedModel | None:
        """The challenger, when there is one and this request falls in its share (sticky by the key header)."""
        other = challenger.current
        if other is None or not router.takes(split, request.headers.get(key_header)):
            return None
        return other

    @app.post(
        "/predict",
        response_model=None,
        dependencies=protected,
        responses={
            200: {"model": PredictResponse, "description": "one prediction per row, in order"},
            **unauthorized,
            413: {"description": "request body too large"},
        },
    )
    async def predict(body: PredictRequest, request: Request) -> Response:  # microseconds of work: no thread hop
        """Predict one or many rows; answers with labels, class probabilities, the version and a request id.

        In an A/B test the challenger may answer (sticky by the key header, e.g. ``X-Request-Key``); in shadow
        mode the champion answers and the challenger scores the same rows in the background.
        """
        start = time.perf_counter()
        model = holder.current  # read once: a concurrent swap cannot mix two versions in one answer
        assert model is not None
        role, shadowed, split = "champion", None, router.split  # one split for the whole request
        other = taken_by_challenger(split, request) if split.mode != "off" else None
        if other is not None and split.mode == "ab":
            model, role = other, "challenger"
            request.scope[ANSWERED_BY] = other.version  # the request metrics count the version that answered
        elif other is not None:
            shadowed = other
        # Serialized straight to bytes by pydantic-core: the answer is built to the documented schema, so
        # validating it again per request would only cost time (schemathesis checks the schema in the tests).
        predictions = model.predict(model_input(model, body.rows))
        request_id = ids.next()
        answer = {"model": model.name, "version": model.version, "request_id": request_id, "predictions": predictions}
        metrics.rows.labels(model.version).inc(len(body.rows))
        content = to_json(answer)
        took = time.perf_counter() - start
        if split.mode != "off":
            metrics.model_latency.labels(role, model.version).observe(took)
        if feedback is not None:  # remembered only where feedback can be stored
            recent.add(request_id, len(body.rows), role, content)
        if log is not None or shadowed is not None:  # the bytes in, already JSON: nothing to serialize again,
            sent = await request.body()  # unless a row used the data's own names: logged by feature name
            if aliased:
                sent = to_json({"rows": [row.__dict__ for row in body.rows]})
        if log is not None:  # a queue append of the bytes in and out
            log.record(took * 1000, sent, content, len(body.rows), request_id, role)
        if shadowed is not None:
            shadow.offer((request_id, shadowed, body.rows, predictions, sent))
        return Response(content, media_type="application/json", headers={"x-request-id": request_id})

    @app.post(
        "/feedback",
        response_model=FeedbackResponse,
        dependencies=protected,
        responses={
            **unauthorized,
            409: {"description": "the prediction log is off: feedback has nowhere to be stored"},
            503: {"description": "the feedback could not be stored (nothing was): send it again"},
        },
    )
    def post_feedback(body: FeedbackRequest) -> dict[str, Any]:
        """True labels (regression: values) for rows answered earlier, by request id and row; each item's
        outcome is reported (``unknown_request``: not among the answers this server remembers)."""
        if feedback is None:
            raise HTTPException(
                409, "the prediction log is off (MLPIPELINE_PREDICTION_LOG_DIR): feedback is stored beside it"
            )
        truth = "value" if first.task == "regression" else "label"
        results, stored = [], []
        for item in body.items:
            status, answers = recent.label(item.request_id, item.row)
            results.append({"request_id": item.request_id, "row": item.row, "status": status})
            if status == "stored":
                stored.append((item, answers))
        if stored:
            try:
                feedback.write([{"request": i.request_id, "row": i.row, truth: getattr(i, truth)} for i, _ in stored])
            except ServiceUnavailableError as exc:
                for item, _ in stored:
                    recent.unlabel(item.request_id, item.row)
                raise HTTPException(503, f"{exc}; nothing was stored, send it again") from exc
        for item, answers in stored:
            metrics.count_feedback(answers, item.row, getattr(item, truth))
        return {"stored": len(stored), "items": results}

    def ab_status() -> dict[str, Any]:
        split, current, champion = router.split, challenger.current, holder.current
        assert champion is not None
        effective = split.mode if split.mode != "off" and current is not None and split.share > 0 else "champion only"
        stats = shadow.stats
        return {
            "mode": split.mode,
            "share": split.share,
            "effective": effective,
            "alias": challenger.alias,
            "key_header": key_header,
            "champion": champion.version,
            "challenger": current.version if current is not None else None,
            "challenger_error": challenger.last_error,
            "shadow": {
                "scored": stats.scored,
                "dropped": stats.dropped,
                "failed": stats.failed,
                "queued": shadow.queued,
            },
        }

    @app.get("/ab", response_model=ABStatus, dependencies=protected, responses=unauthorized)
    def get_ab() -> dict[str, Any]:
        """The A/B split (mode, challenger share), the challenger served (or why none is) and shadow counts."""
        return ab_status()

    @app.post("/ab", response_model=ABStatus, dependencies=protected, responses=unauthorized)
    def post_ab(change: SplitChange) -> dict[str, Any]:
        """Change the split while serving (no restart, no failed request); the challenger is loaded first."""
        old = router.split
        new = Split(change.mode or old.mode, old.share if change.share is None else change.share)
        if new.mode != "off":
            challenger.refresh()  # load (or update) the challenger before it gets traffic
        router.split = new
        if new != old:
            logger.info("A/B split: %s, challenger share %.3f (was %s, %.3f)", new.mode, new.share, old.mode, old.share)
        return ab_status()

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=protected,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}, **unauthorized},
    )
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests (by route, method, status, model version), latency histogram, rows."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/health", response_model=Status)
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", response_model=Status, responses={503: {"model": Status}})
    def ready() -> Any:
        """Readiness: a model is loaded."""
        model = holder.current
        if model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready", "version": model.version}

    @app.get("/model", response_model=ModelInfo, dependencies=protected, responses=unauthorized)
    def model_info() -> dict[str, Any]:
        """What is being served: name, version, run id, input features, labels, lineage (data hashes)."""
        model = holder.current
        assert model is not None
        return {
            "name": model.name,
            "version": model.version,
            "run_id": model.run_id,
            "task": model.task,
            "features": list(model.features),
            "labels": {str(k): v for k, v in model.labels.items()},
            "follows_alias": holder.follows_alias,
            "lineage": model.lineage,
            "reload_error": holder.last_error,
        }

    @app.post("/reload", response_model=ModelInfo, dependencies=protected, responses=unauthorized)
    def reload() -> dict[str, Any]:
        """Check the champion alias (and, in an A/B or shadow mode, the challenger's) now and switch if it moved
        (the old model serves until the new one is ready)."""
        holder.refresh()
        if router.split.mode != "off":
            challenger.refresh()
        return model_info()

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, limit=settings.serve_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, version=serving)  # outermost: it sees every answer
    return app
