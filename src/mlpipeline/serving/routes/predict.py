"""``POST /predict``: one or many rows, answered by the champion (or, in an A/B test, the challenger)."""

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from mlpipeline.serving.metrics import ANSWERED_BY
from mlpipeline.serving.routes import UNAUTHORIZED, new_router
from mlpipeline.serving.schemas import PredictResponse, RequestModels
from mlpipeline.serving.services import Services, model_input

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictResponse, "description": "one prediction per row, in order"},
    **UNAUTHORIZED,
    413: {"description": "request body too large"},
}


def router(services: Services, models: RequestModels) -> APIRouter:
    routes = new_router(services)
    PredictRequest = models.predict
    s = services

    @routes.post("/predict", response_model=None, responses=RESPONSES)
    async def predict(body: PredictRequest, request: Request) -> Response:  # type: ignore[valid-type]
        """Predict one or many rows; answers with labels, class probabilities, the version and a request id.

        In an A/B test the challenger may answer (sticky by the key header, e.g. ``X-Request-Key``); in shadow
        mode the champion answers and the challenger scores the same rows in the background.
        """
        # Microseconds of work: async, no thread hop.
        start = time.perf_counter()
        rows = body.rows  # type: ignore[attr-defined]
        model = s.holder.current  # read once: a concurrent swap cannot mix two versions in one answer
        assert model is not None
        role, shadowed, split = "champion", None, s.router.split  # one split for the whole request
        other = s.taken_by_challenger(split, request) if split.mode != "off" else None
        if other is not None and split.mode == "ab":
            model, role = other, "challenger"
            request.scope[ANSWERED_BY] = other.version  # the request metrics count the version that answered
        elif other is not None:
            shadowed = other
        # Serialized straight to bytes by pydantic-core: the answer is built to the documented schema, so
        # validating it again per request would only cost time (schemathesis checks the schema in the tests).
        predictions = model.predict(model_input(model, rows))
        request_id = s.ids.next()
        answer = {"model": model.name, "version": model.version, "request_id": request_id, "predictions": predictions}
        s.metrics.rows.labels(model.version).inc(len(rows))
        content = to_json(answer)
        took = time.perf_counter() - start
        if split.mode != "off":
            s.metrics.model_latency.labels(role, model.version).observe(took)
        if s.feedback is not None:  # remembered only where feedback can be stored
            s.recent.add(request_id, len(rows), role, content)
        if s.log is not None or shadowed is not None:  # the bytes in, already JSON: nothing to serialize again,
            sent = await request.body()  # unless a row used the data's own names: logged by feature name
            if models.aliased:
                sent = to_json({"rows": [row.__dict__ for row in rows]})
        if s.log is not None:  # a queue append of the bytes in and out
            s.log.record(took * 1000, sent, content, len(rows), request_id, role)
        if shadowed is not None:
            s.shadow.offer((request_id, shadowed, rows, predictions, sent))
        return Response(content, media_type="application/json", headers={"x-request-id": request_id})

    return routes
