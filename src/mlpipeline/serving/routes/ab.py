"""``GET /ab`` and ``POST /ab``: the A/B split between champion and challenger, shown and changed while serving."""

import logging
from typing import Any

from fastapi import APIRouter

from mlpipeline.serving.routes import UNAUTHORIZED, new_router
from mlpipeline.serving.routing import Split
from mlpipeline.serving.schemas import ABStatus, SplitChange
from mlpipeline.serving.services import Services

logger = logging.getLogger(__name__)


def status(services: Services) -> dict[str, Any]:
    """The split, what it does now (``effective``), the challenger served (or why none is) and shadow counts."""
    split, current, champion = services.router.split, services.challenger.current, services.holder.current
    assert champion is not None
    effective = split.mode if split.mode != "off" and current is not None and split.share > 0 else "champion only"
    stats = services.shadow.stats
    return {
        "mode": split.mode,
        "share": split.share,
        "effective": effective,
        "alias": services.challenger.alias,
        "key_header": services.settings.serve_ab_key_header,
        "champion": champion.version,
        "challenger": current.version if current is not None else None,
        "challenger_error": services.challenger.last_error,
        "shadow": {
            "scored": stats.scored,
            "dropped": stats.dropped,
            "failed": stats.failed,
            "queued": services.shadow.queued,
        },
    }


def router(services: Services) -> APIRouter:
    routes = new_router(services)

    @routes.get("/ab", response_model=ABStatus, responses=UNAUTHORIZED)
    def get_ab() -> dict[str, Any]:
        """The A/B split (mode, challenger share), the challenger served (or why none is) and shadow counts."""
        return status(services)

    @routes.post("/ab", response_model=ABStatus, responses=UNAUTHORIZED)
    def post_ab(change: SplitChange) -> dict[str, Any]:
        """Change the split while serving (no restart, no failed request); the challenger is loaded first."""
        old = services.router.split
        new = Split(change.mode or old.mode, old.share if change.share is None else change.share)
        if new.mode != "off":
            services.challenger.refresh()  # load (or update) the challenger before it gets traffic
        services.router.split = new
        if new != old:
            logger.info("A/B split: %s, challenger share %.3f (was %s, %.3f)", new.mode, new.share, old.mode, old.share)
        return status(services)

    return routes
