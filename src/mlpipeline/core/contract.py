"""Data contracts: what a raw data set must look like, checked with pandera.

A contract is a small YAML document (see ``contracts/iris.yaml``): the task (classes or a regression target),
each feature column as numeric (dtype and allowed range) or categorical (allowed values), nullable or not, and
the label: for classes the integer ``target`` codes with their names (``target_name``), for regression the
range of ``target``. The check reports every failing column with example file lines instead of stopping at
the first problem. :func:`infer_contract` drafts one from any table and never fails on data.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET
from mlpipeline.core.schema import FeatureInfo, Schema, Task, task_of

MAX_EXAMPLES = 5
# A drafted text column with more distinct values than this is probably free text or an id: say so.
MANY_CATEGORIES = 100


class FeatureSpec(BaseModel):
    """One feature column: numeric (its dtype and the closed range its values must lie in) or categorical (the
    values it may take, as text); ``nullable`` allows missing values (the model imputes them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric", "categorical"] = "numeric"
    dtype: Literal["float", "int"] = "float"
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.kind == "categorical":
            if not self.categories:
                raise ValueError("a categorical feature needs its categories (the values it may take)")
            if self.min is not None or self.max is not None:
                raise ValueError("a categorical feature has categories, not min/max")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must be unique")
        elif self.categories is not None:
            raise ValueError("categories apply to kind: categorical only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class TargetSpec(BaseModel):
    """The range a regression target must lie in (either bound may be left open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None


class Contract(BaseModel):
    """A data set's contract: the task, the feature columns, and the label: class code -> name, or a range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    task: Task = "classification"
    features: Annotated[dict[str, FeatureSpec], Field(min_length=1)]
    labels: dict[int, str] = {}
    target: TargetSpec | None = None
    strict: bool = True

    @model_validator(mode="after")
    def _labels_unique(self) -> Contract:
        if self.task == "classification":
            if len(self.labels) < 2:
                raise ValueError("a classification contract needs at least two labels (code: name)")
            if len(set(self.labels.values())) != len(self.labels):
                raise ValueError("label names must be unique")
            if self.target is not None:
                raise ValueError("'target' (a range) is for task: regression; classes are listed under 'labels'")
        elif self.labels:
            raise ValueError("a regression contract has no labels (give the target's range under 'target')")
        for column in self.features:
            if column in (RAW_TARGET, RAW_LABEL):
                raise ValueError(f"feature '{column}' clashes with the reserved column of that name")
        return self

    def to_schema(self) -> Schema:
        """What travels with the data and the model (task, feature kinds and categories, labels)."""
        return Schema(
            task=self.task,
            features={
                name: FeatureInfo(kind=spec.kind, categories=spec.categories, nullable=spec.nullable)
                for name, spec in self.features.items()
            },
            labels=dict(self.labels),
        )


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
    """What ``validate`` found; written to ``reports/data_validation.json`` with the schema preprocess passes on."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    contract: str
    task: Task = "classification"
    schema_: Schema | None = Field(default=None, alias="schema")
    passed: bool
    data_md5: str | None = None
    rows: int
    columns: list[str]
    class_counts: dict[str, int]
    violations: list[Violation]

    def summary(self) -> str:
        """One line naming every failing column."""
        return "; ".join(v.summary() for v in self.violations)


def _problem(check: str, column: str = "") -> str:
    if check.startswith("coerce_dtype") or check.startswith("dtype("):
        return "wrong type (not a number)" if "float" in check or "int" in check else f"wrong type ({check})"
    if check == "not_nullable":
        return "missing value (null/NaN)"
    if check.startswith("isin"):
        if column in (RAW_TARGET, RAW_LABEL):
            return "unknown label"
        return "unknown category (allowed: " + check.removeprefix("isin(").removesuffix(")") + ")"
    if check.startswith("in_range"):
        return "out of range " + check.removeprefix("in_range")
    if check.startswith("greater_than_or_equal_to") or check.startswith("less_than_or_equal_to"):
        return "out of range " + check
    if check == "column_in_dataframe":
        return "column missing"
    if check == "column_in_schema":
        return "unexpected column"
    return check


def _range_checks(low: float | None, high: float | None) -> list[Any]:
    import pandera.pandas as pa

    if low is not None and high is not None:
        return [pa.Check.in_range(low, high)]
    if low is not None:
        return [pa.Check.ge(low)]
    if high is not None:
        return [pa.Check.le(high)]
    return []


def _schema(contract: Contract) -> Any:
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for name, spec in contract.features.items():
        if spec.kind == "categorical":
            checks = [pa.Check.isin(spec.categories or [])]
            columns[name] = pa.Column(str, checks=checks, nullable=spec.nullable, coerce=True)
            continue
        # A nullable integer column is read as floats (NaN is a float); its values are still range-checked.
        dtype = "float64" if spec.dtype == "float" or spec.nullable else "int64"
        checks = _range_checks(spec.min, spec.max)
        columns[name] = pa.Column(dtype, checks=checks, nullable=spec.nullable, coerce=True)
    if contract.task == "classification":
        codes = pa.Check.isin(sorted(contract.labels))
        columns[RAW_TARGET] = pa.Column("int64", codes, nullable=False, coerce=True)
        names = pa.Check.isin(sorted(contract.labels.values()))
        columns[RAW_LABEL] = pa.Column(str, names, nullable=False, coerce=True)
    else:
        bounds = contract.target or TargetSpec()
        columns[RAW_TARGET] = pa.Column("float64", _range_checks(bounds.min, bounds.max), nullable=False, coerce=True)
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
    layout = task_of(df) if RAW_TARGET in df.columns else contract.task
    if layout != contract.task:
        violations.append(
            Violation(
                column="<table>",
                problem=(
                    f"the data is laid out for {layout} but contract '{contract.name}' says {contract.task}: set "
                    f"ingest.task: {contract.task} (or draft the contract again from this data)"
                ),
                count=0,
                examples=[],
            )
        )
        return _report(df, contract, violations, {})
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
                Violation(
                    column=column_name, problem=_problem(str(check), column_name), count=len(group), examples=examples
                )
            )

    counts: dict[str, int] = {}
    if RAW_LABEL in df.columns and contract.task == "classification":
        counts = {str(k): int(v) for k, v in df[RAW_LABEL].value_counts(dropna=True).sort_index().items()}
    if len(df) == 0:
        violations.append(Violation(column="<table>", problem="no data rows", count=0, examples=[]))
    elif RAW_LABEL in df.columns and contract.task == "classification":
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
    if contract.task == "classification" and RAW_TARGET in df.columns and RAW_LABEL in df.columns and not violations:
        expected = df[RAW_TARGET].astype("int64").map(contract.labels)
        mismatch = df.index[expected != df[RAW_LABEL].astype(str)]
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
    return _report(df, contract, violations, counts)


def _report(
    df: pd.DataFrame, contract: Contract, violations: list[Violation], counts: dict[str, int]
) -> ValidationReport:
    return ValidationReport(
        contract=contract.name,
        task=contract.task,
        schema=contract.to_schema(),
        passed=not violations,
        rows=len(df),
        columns=[str(c) for c in df.columns],
        class_counts=counts,
        violations=violations,
    )


def _round(value: float, up: bool, integer: bool) -> float:
    if integer:
        return float(math.ceil(value) if up else math.floor(value))
    return round(value, 6)


def _numeric_spec(values: pd.Series, nullable: bool, margin: float) -> FeatureSpec:
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * margin
    integer = bool((values == values.round()).all())
    low = max(lo - pad, 0.0) if lo >= 0 else lo - pad  # never invent negatives for non-negative data
    return FeatureSpec(
        dtype="int" if integer else "float",
        min=_round(low, False, integer),
        max=_round(hi + pad, True, integer),
        nullable=nullable,
    )


def infer_feature(column: pd.Series, margin: float = 0.1) -> FeatureSpec:
    """Draft one column's spec from its values (any dtype): numbers get a widened range, anything else is
    categorical with the values seen; a column with missing values is nullable."""
    present = column.dropna()
    if column.dtype == object or str(column.dtype).startswith(("string", "str")):
        present = present[present.astype(str).str.strip() != ""]
    nullable = len(present) < len(column)
    if len(present) == 0:
        return FeatureSpec(nullable=True)
    if pd.api.types.is_bool_dtype(present):
        present = present.astype(str)
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all() and not pd.api.types.is_bool_dtype(column):
        finite = numbers[numbers.abs() != math.inf]
        if len(finite) == len(numbers):
            return _numeric_spec(numbers.astype("float64"), nullable, margin)
    values = sorted({str(v) for v in present})
    return FeatureSpec(kind="categorical", categories=values, nullable=nullable)


def infer_contract(df: pd.DataFrame, name: str, margin: float = 0.1) -> Contract:
    """Draft a contract from known-good data in ingest's layout (``target``, plus ``target_name`` for classes):
    numeric ranges widened by ``margin`` of their span, categories with their values, nullability, labels."""
    features = {
        str(column): infer_feature(df[column], margin) for column in df.columns if column not in (RAW_TARGET, RAW_LABEL)
    }
    if RAW_LABEL in df.columns:
        pairs = df[[RAW_TARGET, RAW_LABEL]].dropna().drop_duplicates()
        labels = {int(float(code)): str(label) for code, label in pairs.itertuples(index=False)}
        return Contract(name=name, features=features, labels=dict(sorted(labels.items())))
    values = pd.to_numeric(df[RAW_TARGET], errors="coerce").dropna()
    spec = _numeric_spec(values, False, margin) if len(values) else FeatureSpec()
    return Contract(name=name, task="regression", features=features, target=TargetSpec(min=spec.min, max=spec.max))
