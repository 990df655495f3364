"""Data contracts: what a raw data set must look like, checked with pandera.

A contract is a small YAML document (see ``contracts/iris.yaml``): the feature columns with their dtype and
allowed range, the integer ``target`` column with its known labels, and the human-readable label column. The
check reports every failing column with example file lines instead of stopping at the first problem.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET

MAX_EXAMPLES = 5


class FeatureSpec(BaseModel):
    """One feature column: its dtype and the closed range its values must lie in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dtype: Literal["float", "int"] = "float"
    min: float | None = None
    max: float | None = None


class Contract(BaseModel):
    """A data set's contract: feature columns, and the labels ``target`` may take (code -> name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    features: Annotated[dict[str, FeatureSpec], Field(min_length=1)]
    labels: Annotated[dict[int, str], Field(min_length=2)]
    strict: bool = True

    @model_validator(mode="after")
    def _labels_unique(self) -> Contract:
        if len(set(self.labels.values())) != len(self.labels):
            raise ValueError("label names must be unique")
        for column, spec in self.features.items():
            if column in (RAW_TARGET, RAW_LABEL):
                raise ValueError(f"feature '{column}' clashes with the reserved column of that name")
            if spec.min is not None and spec.max is not None and spec.min > spec.max:
                raise ValueError(f"feature '{column}': min {spec.min} > max {spec.max}")
        return self


class Violation(BaseModel):
    """One failed check on one column (or on the whole table), with example file lines."""

    column: str
    problem: str
    count: int
    examples: list[dict[str, Any]]

    def summary(self) -> str:
        """E.g. ``sepal_length_cm: not a number (2 rows, e.g. line 5: 'abc')``."""
        shown = ", ".join(
            f"line {e['line']}: {e['value']!r}" if "line" in e else repr(e["value"]) for e in self.examples[:3]
        )
        rows = f"{self.count} row{'s' if self.count != 1 else ''}"
        return f"{self.column}: {self.problem} ({rows}{', e.g. ' + shown if shown else ''})"


class ValidationReport(BaseModel):
    """What ``validate`` found; written to ``reports/data_validation.json``."""

    contract: str
    passed: bool
    data_md5: str | None = None
    rows: int
    columns: list[str]
    class_counts: dict[str, int]
    violations: list[Violation]

    def summary(self) -> str:
        """One line naming every failing column."""
        return "; ".join(v.summary() for v in self.violations)


def _problem(check: str) -> str:
    if check.startswith("coerce_dtype") or check.startswith("dtype("):
        return "wrong type (not a number)" if "float" in check or "int" in check else f"wrong type ({check})"
    if check == "not_nullable":
        return "missing value (null/NaN)"
    if check.startswith("isin"):
        return "unknown label"
    if check.startswith("in_range"):
        return "out of range " + check.removeprefix("in_range")
    if check.startswith("greater_than_or_equal_to") or check.startswith("less_than_or_equal_to"):
        return "out of range " + check
    if check == "column_in_dataframe":
        return "column missing"
    if check == "column_in_schema":
        return "unexpected column"
    return check


def _schema(contract: Contract) -> Any:
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for name, spec in contract.features.items():
        checks = []
        if spec.min is not None and spec.max is not None:
            checks.append(pa.Check.in_range(spec.min, spec.max))
        elif spec.min is not None:
            checks.append(pa.Check.ge(spec.min))
        elif spec.max is not None:
            checks.append(pa.Check.le(spec.max))
        dtype = "float64" if spec.dtype == "float" else "int64"
        columns[name] = pa.Column(dtype, checks=checks, nullable=False, coerce=True)
    columns[RAW_TARGET] = pa.Column("int64", pa.Check.isin(sorted(contract.labels)), nullable=False, coerce=True)
    columns[RAW_LABEL] = pa.Column(str, pa.Check.isin(sorted(contract.labels.values())), nullable=False)
    return pa.DataFrameSchema(columns, strict=contract.strict, ordered=False)


def _value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def check_frame(df: pd.DataFrame, contract: Contract, min_rows_per_class: int) -> ValidationReport:
    """Check ``df`` (as read from the raw CSV, index = data row) against ``contract``; never raises for bad data.

    Lines in the report are file lines: data row ``i`` is line ``i + 2`` (line 1 is the header).
    """
    from pandera.errors import SchemaErrors

    violations: list[Violation] = []
    try:
        _schema(contract).validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        mistyped = set(cases.loc[cases["check"].astype(str).str.startswith(("coerce_dtype", "dtype(")), "column"])
        for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
            column_name = str(column) if isinstance(column, str) else "<table>"
            if column in mistyped and not str(check).startswith(("coerce_dtype", "dtype(", "not_nullable")):
                continue  # value checks cannot run on a column of the wrong type: the type error says it all
            if check in ("column_in_dataframe", "column_in_schema"):
                for missing in group["failure_case"]:
                    violations.append(
                        Violation(column=str(missing), problem=_problem(str(check)), count=1, examples=[])
                    )
                continue
            examples = []
            for _, row in group.head(MAX_EXAMPLES).iterrows():
                example: dict[str, Any] = {"value": _value(row["failure_case"])}
                if pd.notna(row["index"]):
                    example = {"line": int(row["index"]) + 2, **example}
                examples.append(example)
            violations.append(
                Violation(column=column_name, problem=_problem(str(check)), count=len(group), examples=examples)
            )

    counts: dict[str, int] = {}
    if RAW_LABEL in df.columns:
        counts = {str(k): int(v) for k, v in df[RAW_LABEL].value_counts(dropna=True).sort_index().items()}
    if len(df) == 0:
        violations.append(Violation(column="<table>", problem="no data rows", count=0, examples=[]))
    elif RAW_LABEL in df.columns:
        for label in contract.labels.values():
            seen = counts.get(label, 0)
            if seen < min_rows_per_class:
                violations.append(
                    Violation(
                        column=RAW_LABEL,
                        problem=f"too few rows for class '{label}': {seen} < min_rows_per_class {min_rows_per_class}",
                        count=seen,
                        examples=[],
                    )
                )
    if RAW_TARGET in df.columns and RAW_LABEL in df.columns and not violations:
        expected = df[RAW_TARGET].astype("int64").map(contract.labels)
        mismatch = df.index[expected != df[RAW_LABEL]]
        if len(mismatch):
            violations.append(
                Violation(
                    column=RAW_LABEL,
                    problem="does not match target code per the contract's labels",
                    count=len(mismatch),
                    examples=[
                        {"line": int(i) + 2, "value": _value(df.at[i, RAW_LABEL])} for i in mismatch[:MAX_EXAMPLES]
                    ],
                )
            )
    return ValidationReport(
        contract=contract.name,
        passed=not violations,
        rows=len(df),
        columns=[str(c) for c in df.columns],
        class_counts=counts,
        violations=violations,
    )


def infer_contract(df: pd.DataFrame, name: str, margin: float = 0.1) -> Contract:
    """Draft a contract from known-good data: observed ranges widened by ``margin`` of their span."""
    features: dict[str, FeatureSpec] = {}
    for column in df.columns:
        if column in (RAW_TARGET, RAW_LABEL):
            continue
        series = pd.to_numeric(df[column])
        lo, hi = float(series.min()), float(series.max())
        pad = (hi - lo) * margin
        is_int = pd.api.types.is_integer_dtype(series)
        low = max(lo - pad, 0.0) if lo >= 0 else lo - pad  # never invent negatives for non-negative data
        features[str(column)] = FeatureSpec(
            dtype="int" if is_int else "float",
            min=math.floor(low) if is_int else round(low, 6),
            max=math.ceil(hi + pad) if is_int else round(hi + pad, 6),
        )
    pairs = df[[RAW_TARGET, RAW_LABEL]].drop_duplicates().sort_values(RAW_TARGET)
    labels = {int(code): str(label) for code, label in pairs.itertuples(index=False)}
    return Contract(name=name, features=features, labels=labels)
