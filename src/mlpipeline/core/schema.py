"""What a model's inputs and label are: the part of the data contract that travels with the data and the model.

Validate derives it from the contract and writes it into its report; preprocess writes it beside the split as
``data/processed/schema.json``; train stores it in the model's metadata, so whoever holds a model (evaluate, the
gate re-scoring a champion, the server) reads data exactly as the model was trained on it: categorical columns
as text (a code ``"01"`` stays ``"01"``), numbers as floats, a missing value as NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET

if TYPE_CHECKING:
    import pandas as pd

Task = Literal["classification", "regression"]


class FeatureInfo(BaseModel):
    """One input column: numeric or categorical (with its allowed values), whether it may be missing, whether
    it may predict the label alone (the gate's lone-feature check lets it), and its name in the data's own file
    when ingest snake_cased it (the server accepts both)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric", "categorical"] = "numeric"
    categories: list[str] | None = None
    nullable: bool = False
    may_predict_alone: bool = Field(default=False, exclude_if=lambda allowed: not allowed)  # written when true
    source_name: str | None = Field(default=None, exclude_if=lambda name: name is None)  # as the data's file has it


class Schema(BaseModel):
    """The task, the input columns in order, and (for classes) the label code -> name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Task = "classification"
    features: dict[str, FeatureInfo]
    labels: dict[int, str] = {}

    @property
    def categorical(self) -> list[str]:
        return [name for name, info in self.features.items() if info.kind == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [name for name, info in self.features.items() if info.kind == "numeric"]

    def csv_dtypes(self) -> dict[str, str]:
        """``pandas.read_csv`` dtypes: categories and class names as text, whatever they look like."""
        dtypes = {name: "string" for name in self.categorical}
        if self.task == "classification":
            dtypes[RAW_LABEL] = "string"
        return dtypes

    def model_input(self, df: pd.DataFrame) -> pd.DataFrame:
        """The feature columns, in order, as the model takes them: floats, and text (object) with NaN missing."""
        import numpy as np
        import pandas as pd

        missing = [name for name in self.features if name not in df.columns]
        if missing:
            from mlpipeline.errors import DataContractError

            raise DataContractError(f"columns {missing} the model needs are not in the data")
        out = {}
        for name, info in self.features.items():
            column = df[name]
            if info.kind == "categorical":
                text = column.astype("string")
                out[name] = text.astype(object).where(text.notna(), np.nan)
            else:
                out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
        return pd.DataFrame(out, index=df.index)

    def target(self, df: pd.DataFrame) -> pd.Series:
        """The label: integer class codes, or the regression target as floats."""
        if self.task == "classification":
            return df[RAW_TARGET].astype("int64")
        return df[RAW_TARGET].astype("float64")

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready, for the model's metadata (label codes as strings, as JSON keys are)."""
        data = self.model_dump(mode="json")
        data["labels"] = {str(code): name for code, name in sorted(self.labels.items())}
        return data


def task_of(df: pd.DataFrame) -> Task:
    """The task a raw or processed table is laid out for: classes carry a label-name column."""
    return "classification" if RAW_LABEL in df.columns else "regression"
