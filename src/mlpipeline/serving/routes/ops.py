"""The operator's routes: ``GET /health`` (liveness), ``GET /ready`` (a model is loaded), ``GET /model`` (what is
served), ``POST /reload`` (check the aliases now), ``GET /metrics`` (Prometheus)."""

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from mlpipeline.serving.metrics import CONTENT_TYPE
from mlpipeline.serving.routes import UNAUTHORIZED, new_router
from mlpipeline.serving.schemas import ModelInfo, Status
from mlpipeline.serving.services import Services

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
    **UNAUTHORIZED,
}


def open_router(services: Services) -> APIRouter:
    """The probes, answered without a token (an orchestrator's liveness and readiness checks)."""
    routes = new_router(services, protected=False)

    @routes.get("/health", response_model=Status)
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @routes.get("/ready", response_model=Status, responses={503: {"model": Status}})
    def ready() -> Any:
        """Readiness: a model is loaded."""
        model = services.holder.current
        if model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready", "version": model.version}

    return routes


def router(services: Services) -> APIRouter:
    routes = new_router(services)
    holder = services.holder

    @routes.get("/metrics", response_class=Response, responses=METRICS_RESPONSES)
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests (by route, method, status, model version), latency histogram, rows."""
        return Response(services.metrics.exposition(), media_type=CONTENT_TYPE)

    @routes.get("/model", response_model=ModelInfo, responses=UNAUTHORIZED)
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

    @routes.post("/reload", response_model=ModelInfo, responses=UNAUTHORIZED)
    def reload() -> dict[str, Any]:
        """Check the champion alias (and, in an A/B or shadow mode, the challenger's) now and switch if it moved
        (the old model serves until the new one is ready)."""
        holder.refresh()
        if services.router.split.mode != "off":
            services.challenger.refresh()
        return model_info()

    return routes
