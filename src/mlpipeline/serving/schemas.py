"""What the server's requests and answers look like: the answers' models, and the request models built from the
served model's input schema (a field per feature, typed and bounded; the feedback item's truth from its labels).

The request models are made when the app is (``request_models``): their fields come from the model, so a change
of features is a new app, never a request checked against the wrong schema.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from mlpipeline.serving.model import LoadedModel
from mlpipeline.serving.routing import Mode

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


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema says); "3" and true stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class FeedbackItem(BaseModel):
    """One labelled row; the truth field (``label`` or ``value``) is added from the model (:func:`request_models`)."""

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


@dataclass(frozen=True)
class RequestModels:
    """The request bodies of ``POST /predict`` and ``POST /feedback`` for one served model."""

    predict: type[BaseModel]
    feedback: type[BaseModel]
    row_names: list[str]  # every name a row's field may have: the features and the data's own names
    aliased: bool  # whether some feature is also accepted under the data file's own name


def request_models(first: LoadedModel, max_batch: int) -> RequestModels:
    """The request models for ``first``'s schema, at most ``max_batch`` rows (or items) a request."""
    row_fields, example_row = _row_fields(first)
    infos = first.schema.features.values() if first.schema is not None else []
    row = create_model("Row", __config__=ConfigDict(extra="forbid", strict=True), **row_fields)
    example: dict[str, Any] = {"rows": [example_row]}
    predict = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        rows=(Annotated[list[row], Field(min_length=1, max_length=max_batch)], ...),
    )
    item = create_model("LabelledRow", __base__=FeedbackItem, **_truth_field(first))
    feedback = create_model(
        "FeedbackRequest",
        __config__=ConfigDict(extra="forbid"),
        items=(Annotated[list[item], Field(min_length=1, max_length=max_batch)], ...),
    )
    sources = [info.source_name for info in infos if info.source_name]
    return RequestModels(predict, feedback, [*row_fields, *sources], bool(sources))
