"""``POST /feedback``: true labels (regression: values) for rows answered earlier, stored beside the prediction log."""

from typing import Any

from fastapi import APIRouter, HTTPException

from mlpipeline.errors import ServiceUnavailableError
from mlpipeline.serving.routes import UNAUTHORIZED, new_router
from mlpipeline.serving.schemas import FeedbackResponse, RequestModels
from mlpipeline.serving.services import Services

RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    409: {"description": "the prediction log is off: feedback has nowhere to be stored"},
    503: {"description": "the feedback could not be stored (nothing was): send it again"},
}


def router(services: Services, models: RequestModels) -> APIRouter:
    routes = new_router(services)
    FeedbackRequest = models.feedback
    first = services.holder.current
    assert first is not None
    truth = "value" if first.task == "regression" else "label"

    @routes.post("/feedback", response_model=FeedbackResponse, responses=RESPONSES)
    def post_feedback(body: FeedbackRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """True labels (regression: values) for rows answered earlier, by request id and row; each item's
        outcome is reported (``unknown_request``: not among the answers this server remembers)."""
        feedback, recent = services.feedback, services.recent
        if feedback is None:
            raise HTTPException(
                409, "the prediction log is off (MLPIPELINE_PREDICTION_LOG_DIR): feedback is stored beside it"
            )
        results, stored = [], []
        for item in body.items:  # type: ignore[attr-defined]
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
            services.metrics.count_feedback(answers, item.row, getattr(item, truth))
        return {"stored": len(stored), "items": results}

    return routes
