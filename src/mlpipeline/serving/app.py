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
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlpipeline.serving.metrics import MetricsMiddleware
from mlpipeline.serving.model import ModelHolder
from mlpipeline.serving.requests import BodyLimit, http_error, validation_error
from mlpipeline.serving.routes import ab, feedback, ops, predict
from mlpipeline.serving.schemas import request_models
from mlpipeline.serving.services import Services
from mlpipeline.settings import EnvSettings, env_settings


def create_app(holder: ModelHolder, settings: EnvSettings | None = None, challenger: ModelHolder | None = None) -> Any:
    """The FastAPI application serving ``holder``'s model; request fields come from its input schema.

    ``challenger`` (default: one following ``MLPIPELINE_SERVE_AB_ALIAS`` of the same registered model) answers
    or shadows a share of requests when ``MLPIPELINE_SERVE_AB_MODE`` (or ``POST /ab``) says so.
    """
    settings = settings or env_settings()
    first = holder.current
    assert first is not None
    models = request_models(first, settings.serve_max_batch)
    services = Services.build(holder, settings, challenger)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        yield
        services.close()

    app = FastAPI(
        lifespan=lifespan,
        title="mlpipeline model server",
        version="1",
        description=f"Predictions of `{first.name}` ({'champion' if holder.follows_alias else 'a pinned version'}).",
    )
    app.state.row_names = models.row_names  # a 422 on a misspelt field names the closest of these
    routers = [
        predict.router(services, models),
        feedback.router(services, models),
        ab.router(services),
        ops.router(services),
        ops.open_router(services),
    ]
    for router in routers:
        app.include_router(router)
    app.state.routes = [route for router in routers for route in router.routes]  # a 405's Allow lists their methods
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, limit=settings.serve_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics, version=services.serving)  # outermost
    return app
