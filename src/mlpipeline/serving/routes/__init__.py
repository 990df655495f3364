"""The server's routes, one router per concern: ``predict``, ``feedback``, ``ab`` (the A/B split), ``ops`` (health,
readiness, the model served, reload, metrics). Each is built from the app's :class:`~mlpipeline.serving.services.
Services` and request models, and keeps no state of its own."""

from typing import Any

from fastapi import APIRouter, Depends

from mlpipeline.serving.requests import StrictJSONRoute
from mlpipeline.serving.services import Services

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "missing or wrong bearer token"}}


def new_router(services: Services, protected: bool = True) -> APIRouter:
    """A router whose bodies are parsed strictly (a body that is not JSON is a 422 saying why) and whose routes
    need the bearer token when ``protected`` and one is set."""
    dependencies = [Depends(services.authorize)] if protected else []
    return APIRouter(route_class=StrictJSONRoute, dependencies=dependencies)
