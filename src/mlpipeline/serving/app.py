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
"""

import contextlib
import hmac
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import to_json

from mlpipeline.monitoring.predictions import PredictionLog
from mlpipeline.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServerMetrics
from mlpipeline.serving.model import LoadedModel, ModelHolder
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
    predictions: list[Prediction] | list[ValuePrediction]


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


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, by header or while reading a streamed body.

    The body is read here (never more than ``limit`` + one chunk) and replayed to the app, which would buffer it
    anyway; a body over the limit is never handed on.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        body = b'{"detail":"request body larger than %d bytes (MLPIPELINE_SERVE_MAX_BODY_BYTES)"}' % self.limit
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _json_safe(value: Any) -> Any:
    """NaN and infinities as strings, so an error that quotes them is still valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field (``loc``), what is wrong (``msg``) and the value given."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {
            "loc": list(e.get("loc", ())),
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
            "input": _json_safe(e.get("input")),
        }
        for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _row_fields(model: LoadedModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request row's fields (name -> type and constraints) and an example row, from the model's schema."""
    fields: dict[str, Any] = {}
    example: dict[str, Any] = {}
    infos = model.schema.features if model.schema is not None else dict.fromkeys(model.features)
    for name, info in infos.items():
        if info is not None and info.kind == "categorical":
            categories = tuple(info.categories or ())
            kind: Any = Literal[categories]
            described = Field(description=f"feature '{name}': one of {list(categories)}")
            example[name] = categories[0]
        else:
            kind = float
            described = Field(
                allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX, description=f"feature '{name}' (a number)"
            )
            example[name] = 1.0
        if info is not None and info.nullable:
            fields[name] = (kind | None, described)
        else:
            fields[name] = (kind, described)
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


def create_app(holder: ModelHolder, settings: EnvSettings | None = None) -> Any:
    """The FastAPI application serving ``holder``'s model; request fields come from its input schema."""
    settings = settings or env_settings()
    first = holder.current
    assert first is not None
    row_fields, example_row = _row_fields(first)
    Row = create_model("Row", __config__=ConfigDict(extra="forbid", strict=True), **row_fields)
    example: dict[str, Any] = {"rows": [example_row]}

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
        rows: Annotated[list[Row], Field(min_length=1, max_length=settings.serve_max_batch)]

    token = settings.serve_token.get_secret_value().encode() if settings.serve_token else None

    def authorize(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    metrics = ServerMetrics()
    log = prediction_log(settings)
    if log is not None:
        metrics.watch_log(log.stats)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        yield
        if log is not None:  # a clean shutdown writes what is still queued
            log.close()

    app = FastAPI(
        lifespan=lifespan,
        title="mlpipeline model server",
        version="1",
        description=f"Predictions of `{first.name}` ({'champion' if holder.follows_alias else 'a pinned version'}).",
    )
    protected = [Depends(authorize)]
    unauthorized: dict[int | str, dict[str, Any]] = {401: {"description": "missing or wrong bearer token"}}

    def serving() -> str:
        model = holder.current
        return model.version if model is not None else "none"

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
        """Predict one or many rows; answers with labels, class probabilities and the model version."""
        start = time.perf_counter()
        model = holder.current  # read once: a concurrent swap cannot mix two versions in one answer
        assert model is not None
        if model.takes_array:  # all numbers: straight into a float array (None -> NaN), no DataFrame
            rows: Any = np.array(
                [[row.__dict__[name] for name in model.features] for row in body.rows], dtype=np.float64
            )
        else:
            rows = model.frame([row.__dict__ for row in body.rows])
        # Serialized straight to bytes by pydantic-core: the answer is built to the documented schema, so
        # validating it again per request would only cost time (schemathesis checks the schema in the tests).
        predictions = model.predict(rows)
        answer = {"model": model.name, "version": model.version, "predictions": predictions}
        metrics.rows.labels(model.version).inc(len(body.rows))
        content = to_json(answer)
        if log is not None:  # a queue append of the bytes in and out, already JSON: nothing to serialize again
            log.record((time.perf_counter() - start) * 1000, await request.body(), content, len(body.rows))
        return Response(content, media_type="application/json")

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
        """Check the champion alias now and switch if it moved (the old model serves until the new one is ready)."""
        holder.refresh()
        return model_info()

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimit, limit=settings.serve_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, version=serving)  # outermost: it sees every answer
    return app
