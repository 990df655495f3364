"""Data contracts: what a raw data set must look like, checked column-wise with polars, streaming.

A contract is a small YAML document (see ``contracts/iris.yaml``): the task (classes or a regression target),
each feature column as numeric (dtype and allowed range) or categorical (allowed values), nullable or not, and
the label: for classes the integer ``target`` codes with their names (``target_name``), for regression the
range of ``target``. The check reports every failing column with example file lines instead of stopping at
the first problem. :func:`infer_contract` drafts one from any table and never fails on data.
"""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlpipeline.core.columns import RAW_LABEL, RAW_NULLS, RAW_TARGET
from mlpipeline.core.schema import FeatureInfo, Schema, Task
from mlpipeline.errors import DataContractError

if TYPE_CHECKING:
    import pandas as pd

MAX_EXAMPLES = 5
# A drafted text column with more distinct values than this is probably free text or an id: say so.
MANY_CATEGORIES = 100


class FeatureSpec(BaseModel):
    """One feature column: numeric (its dtype and the closed range its values must lie in) or categorical (the
    values it may take, as text); ``nullable`` allows missing values (the model imputes them);
    ``may_predict_alone`` lets the gate promote a model although this column alone predicts the label (a
    genuine strong feature, not a leak: see :mod:`mlpipeline.core.leakage`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric", "categorical"] = "numeric"
    dtype: Literal["float", "int"] = "float"
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False
    may_predict_alone: bool = Field(default=False, exclude_if=lambda allowed: not allowed)  # written when true
    source_name: str | None = None  # the column's name in the source file, when ingest snake_cased it

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
    # Columns the data has and the model does not use (column: why), e.g. a row number or an id: validate lets
    # them through unchecked, train never sees them. Move one under features to use it.
    ignored: dict[str, str] = {}

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
        both = sorted(set(self.features) & set(self.ignored))
        if both:
            raise ValueError(f"{both} are listed under both features and ignored: keep each in one of them")
        return self

    def to_schema(self) -> Schema:
        """What travels with the data and the model (task, feature kinds and categories, labels)."""
        return Schema(
            task=self.task,
            features={
                name: FeatureInfo(
                    kind=spec.kind,
                    categories=spec.categories,
                    nullable=spec.nullable,
                    may_predict_alone=spec.may_predict_alone,
                    source_name=spec.source_name,
                )
                for name, spec in self.features.items()
            },
            labels=dict(self.labels),
        )


class Violation(BaseModel):
    """One failed check on one column (or on the whole table), with example file lines."""

    column: str
    problem: str
    count: int  # the failing rows; 0 for a problem of the column or the table
    examples: list[dict[str, Any]]
    details: dict[str, Any] = {}  # in the report only (e.g. the column lists), never in the one-line summary

    def summary(self) -> str:
        """E.g. ``sepal_length_cm: not a number (2 rows, e.g. line 5: 'abc')``."""
        shown = ", ".join(
            f"line {e['line']}: {e['value']!r}" if "line" in e else repr(e["value"]) for e in self.examples[:3]
        )
        if not self.count:  # a problem of the column or the table, not of some rows
            return f"{self.column}: {self.problem}"
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


ROW = "__mlpipeline_row"
PARSED = "__parsed"  # suffix of a number column parsed from its text


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"out of range [{low:g}, {high:g}]"
    return f"out of range (>= {low:g})" if low is not None else f"out of range (<= {high:g})"


def _checks(contract: Contract, present: set[str]) -> tuple[list[Any], list[tuple[str, str, Any, Any]]]:
    """The parsed number columns to add, and (column, problem, failing-row expression, value shown) for every
    check of the contract's present columns (the label by its name).

    Columns are read as text; a number column is parsed leniently once, so a value that is not a number is one
    "wrong type" failure (its other checks skip it) instead of failing the whole column.
    """
    import polars as pl

    parsed: list[Any] = []
    checks: list[tuple[str, str, Any, Any]] = []

    def number(name: str, integer: bool, low: float | None, high: float | None, nullable: bool) -> Any:
        text = pl.col(name)
        parsed.append(text.str.strip_chars().cast(pl.Float64, strict=False).alias(f"{name}{PARSED}"))
        value = pl.col(f"{name}{PARSED}")
        wrong = text.is_not_null() & value.is_null()
        if integer:  # an integer column also refuses 1.5 and inf
            wrong = wrong | (value.is_not_null() & ~value.is_nan() & (~value.is_finite() | (value != value.floor())))
        kind = "an integer" if integer else "a number"
        checks.append((name, f"wrong type (not {kind})", wrong.fill_null(False), text))
        gap = text.is_null() | value.is_nan()
        if not nullable:
            checks.append((name, "missing value (null/NaN)", gap, text))
        if low is not None or high is not None:
            outside = pl.lit(False)
            if low is not None:
                outside = outside | (value < low)
            if high is not None:
                outside = outside | (value > high)
            checks.append((name, _range(low, high), (~wrong & ~gap & outside).fill_null(False), value))
        return value

    def text_in(name: str, allowed: list[str], nullable: bool, problem: str) -> None:
        text = pl.col(name)
        if not nullable:
            checks.append((name, "missing value (null/NaN)", text.is_null(), text))
        checks.append((name, problem, text.is_not_null() & ~text.is_in(allowed), text))

    for name, spec in contract.features.items():
        if name not in present:
            continue
        if spec.kind == "categorical":
            categories = spec.categories or []
            text_in(name, categories, spec.nullable, f"unknown category (allowed: {categories})")
        else:
            number(name, spec.dtype == "int" and not spec.nullable, spec.min, spec.max, spec.nullable)
    if contract.task == "classification":
        # Labels as written: ingest's integer codes depend on which labels the file holds (one stray label shifts
        # them all), so they are never checked; preprocess codes each name by the contract's labels.
        if RAW_LABEL in present:
            labels = sorted(contract.labels.values())
            text_in(RAW_LABEL, labels, False, f"unknown label (allowed: {labels})")
    elif RAW_TARGET in present:
        bounds = contract.target or TargetSpec()
        number(RAW_TARGET, False, bounds.min, bounds.max, False)
    return parsed, checks


def _value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _examples(table: Any, failing: Any, shown: Any) -> list[dict[str, Any]]:
    """The first few failing rows as ``{"line": file line, "value": ...}`` (streams; stops at MAX_EXAMPLES)."""
    rows = table.filter(failing).select(ROW, shown.alias("value")).head(MAX_EXAMPLES).collect(engine="streaming")
    return [{"line": int(row) + 2, "value": _value(value)} for row, value in rows.iter_rows()]


def check_table(table: Any, contract: Contract, min_rows_per_class: int) -> ValidationReport:
    """Check a raw table (a polars ``LazyFrame`` of text columns, as ``io.raw.scan_raw`` reads the raw CSV)
    against ``contract``; never raises for bad data.

    One streaming pass counts every check's failing rows; a failing check then reads just its first few rows for
    examples. Memory stays bounded whatever the number of rows. Lines in the report are file lines: data row
    ``i`` is line ``i + 2`` (line 1 is the header).
    """
    import polars as pl

    columns = list(table.collect_schema().names())
    present = set(columns)
    violations: list[Violation] = []
    layout = ("classification" if RAW_LABEL in present else "regression") if RAW_TARGET in present else contract.task
    expected = [*contract.features, RAW_TARGET] + ([RAW_LABEL] if contract.task == "classification" else [])
    rows_expr = pl.len().alias("rows")
    other = _another_data_set(contract, columns)
    if other is not None:
        rows = int(table.select(rows_expr).collect(engine="streaming").item())
        return _report(rows, columns, contract, [other], {})
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
        rows = int(table.select(rows_expr).collect(engine="streaming").item())
        return _report(rows, columns, contract, violations, {})
    violations += [Violation(column=c, problem="column missing", count=0, examples=[]) for c in expected
                   if c not in present]  # fmt: skip
    if contract.strict:
        violations += [Violation(column=c, problem="unexpected column", count=0, examples=[]) for c in columns
                       if c not in expected and c not in contract.ignored]  # fmt: skip
    parsed, checks = _checks(contract, present)
    indexed = table.with_row_index(ROW).with_columns(parsed)
    sums = [failing.sum().alias(str(i)) for i, (_, _, failing, _) in enumerate(checks)]
    every_column = pl.all().null_count().name.prefix(PARSED)  # polars checks a line's fields only when all are read
    counts = indexed.select(rows_expr, *sums, every_column).collect(engine="streaming").row(0, named=True)
    rows = int(counts["rows"])
    mistyped = {column for i, (column, problem, _, _) in enumerate(checks) if problem.startswith("wrong type")
                and counts[str(i)]}  # fmt: skip
    for i, (column, problem, failing, shown) in enumerate(checks):
        count = int(counts[str(i)])
        if not count or (column in mistyped and not problem.startswith(("wrong type", "missing value"))):
            continue  # value checks on a column of the wrong type add nothing: the type error says it all
        violations.append(
            Violation(column=column, problem=problem, count=count, examples=_examples(indexed, failing, shown))
        )

    class_counts: dict[str, int] = {}
    if RAW_LABEL in present and contract.task == "classification":
        grouped = table.group_by(RAW_LABEL).len().drop_nulls().collect(engine="streaming")
        class_counts = {str(label): int(n) for label, n in sorted(grouped.iter_rows())}
    if rows == 0:
        violations.append(Violation(column="<table>", problem="no data rows", count=0, examples=[]))
    elif class_counts and not set(class_counts) & set(contract.labels.values()):
        violations = [v for v in violations if v.column != RAW_LABEL] + [_other_labels(contract, class_counts)]
    elif RAW_LABEL in present and contract.task == "classification":
        for label in contract.labels.values():
            seen = class_counts.get(label, 0)
            if seen < min_rows_per_class:
                violations.append(
                    Violation(
                        column=RAW_LABEL,
                        problem=f"too few rows for class '{label}': {seen} < min_rows_per_class {min_rows_per_class}",
                        count=0,
                        examples=[],
                    )
                )
    return _report(rows, columns, contract, violations, class_counts)


def _other_labels(contract: Contract, seen: dict[str, int]) -> Violation:
    """One violation when none of the data's labels is the contract's: the wrong label column (codes where the
    contract has names, as in a file with both), or a contract of another data set."""
    more = ", ..." if len(seen) > MAX_EXAMPLES else ""
    shown = ", ".join(repr(label) for label in list(seen)[:MAX_EXAMPLES]) + more
    return Violation(
        column=RAW_LABEL,
        problem=(
            f"none of the labels is one of contract '{contract.name}''s ({', '.join(sorted(contract.labels.values()))}"
            f"): the data's are {shown}. Point ingest.target at the column that holds those names (ingest's log "
            "names a column it left out), or draft a contract for this data (`mlpipeline contract`)"
        ),
        count=sum(seen.values()),
        examples=[],
    )


def _another_data_set(contract: Contract, columns: list[str]) -> Violation | None:
    """One short violation when fewer than half of the contract's features are columns of the data: a contract
    drafted for another data set (the column lists go to the report, not the message)."""
    features = list(contract.features)
    shared = [c for c in features if c in columns]
    if len(shared) * 2 >= len(features):
        return None
    return Violation(
        column="<table>",
        problem=(
            f"contract '{contract.name}' is for another data set: {len(shared)} of its {len(features)} features are "
            "columns of this data. Draft one for it with `mlpipeline contract <file> contracts/<name>.yaml "
            "--target <label column> --use` (docs/data.md)"
        ),
        count=0,
        examples=[],
        details={
            "contract_features_missing": [c for c in features if c not in columns],
            "data_columns": [c for c in columns if c not in (RAW_TARGET, RAW_LABEL)],
        },
    )


def check_frame(df: pd.DataFrame, contract: Contract, min_rows_per_class: int) -> ValidationReport:
    """Check a pandas frame as if it were the raw CSV it would be written to (see :func:`check_table`)."""
    import io

    import polars as pl

    text = df.to_csv(index=False, lineterminator="\n").encode()
    return check_table(pl.read_csv(io.BytesIO(text), infer_schema=False, null_values=RAW_NULLS).lazy(), contract,
                       min_rows_per_class)  # fmt: skip


def _report(
    rows: int, columns: list[str], contract: Contract, violations: list[Violation], counts: dict[str, int]
) -> ValidationReport:
    return ValidationReport(
        contract=contract.name,
        task=contract.task,
        schema=contract.to_schema(),
        passed=not violations,
        rows=rows,
        columns=columns,
        class_counts=counts,
        violations=violations,
    )


def _bound(value: float, up: bool, integer: bool) -> float:
    """``value`` rounded outward (never inward: the bound still covers it), to an integer or 6 decimals."""
    if not math.isfinite(value):
        return value
    if integer:
        return float(math.ceil(value) if up else math.floor(value))
    rounded = round(value, 6)
    return rounded if (rounded >= value if up else rounded <= value) else value


def _numeric_spec(values: pd.Series, nullable: bool, margin: float) -> FeatureSpec:
    lo, hi = float(values.min()), float(values.max())
    pad = hi * margin - lo * margin  # not (hi - lo) * margin: that overflows for the largest floats
    integer = bool((values == values.round()).all())
    low = max(lo - pad, 0.0) if lo >= 0 else lo - pad  # never invent negatives for non-negative data
    return FeatureSpec(
        dtype="int" if integer else "float",
        min=_bound(max(low, -sys.float_info.max), False, integer),
        max=_bound(min(hi + pad, sys.float_info.max), True, integer),
        nullable=nullable,
    )


def _as_numbers(text: pd.Series) -> pd.Series:
    """Text parsed to numbers exactly as validate parses it (polars, trimmed; NaN where it is not a number)."""
    import polars as pl

    parsed = pl.Series(text.astype(object).tolist(), dtype=pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return parsed.to_pandas().astype("float64")


def infer_feature(column: pd.Series, margin: float = 0.1) -> FeatureSpec:
    """Draft one column's spec from its values (any dtype): numbers get a widened range, anything else is
    categorical with the values seen; a column with missing values is nullable. Text is parsed to numbers the
    way validate parses it, so validate accepts the column the spec was drafted from."""
    import pandas as pd

    present = column.dropna()
    text = column.dtype == object or pd.api.types.is_string_dtype(column)
    if text:
        present = present[present.astype(str) != ""]
    nullable = len(present) < len(column)
    if len(present) == 0:
        return FeatureSpec(nullable=True)
    if pd.api.types.is_bool_dtype(present):
        return FeatureSpec(kind="categorical", categories=sorted({str(v) for v in present}), nullable=nullable)
    numbers = _as_numbers(present) if text else pd.to_numeric(present, errors="coerce")
    if numbers.notna().all() and numbers.abs().lt(math.inf).all():
        return _numeric_spec(numbers.astype("float64"), nullable, margin)
    values = sorted({str(v) for v in present})
    return FeatureSpec(kind="categorical", categories=values, nullable=nullable)


ID_NAMES = frozenset({"column", "index", "id", "row", "rownames", "row_names"})  # "column": a header left empty
ID_MIN_ROWS = 20  # below this, a different value in every row is no sign of an id
ROW_NUMBER_MIN_ROWS = 10  # nor is 1, 2, 3... of a row number


def ignored_because(name: str, column: pd.Series, spec: FeatureSpec) -> str | None:
    """Why a drafted column should stay out of the model (a row number, an id, free text, no values), or None.

    A row number in a file sorted by its label predicts the label perfectly on the file and nothing in use."""
    present = column.dropna()
    present = present[present.astype(str) != ""] if column.dtype == object else present
    if name in ID_NAMES or re.fullmatch(r"unnamed_\d+", name):
        return f"named {name!r}: a row number or an id, which no model should learn from"
    if len(present) == 0:
        return "no values: every row is a gap"
    if (
        spec.kind == "numeric"
        and spec.dtype == "int"
        and len(present) == len(column)
        and len(column) >= ID_MIN_ROWS // 2
    ):
        numbers = _as_numbers(present) if column.dtype == object else present.astype("float64")
        start = float(numbers.iloc[0])
        if start in (0.0, 1.0) and (numbers.diff().iloc[1:] == 1).all():
            return "counts the rows (a row number), which no model should learn from"
    if spec.kind == "categorical" and _dates(present):
        return (
            "dates: as a category, a date never matches a new day. To use it, derive numbers from it (a year, "
            "a weekday, days since) with a feature transform (train.features, docs/adapt.md)"
        )
    if spec.kind == "categorical" and len(present) >= ID_MIN_ROWS and present.nunique() == len(present):
        return "a different value in every row: an id or free text"
    return None


DAYS = ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y")
DATE_FORMATS = ("ISO8601", *DAYS, *(f"{day} {time}" for day in DAYS for time in ("%H:%M", "%H:%M:%S")))


def _dates(values: pd.Series) -> bool:
    """Whether text values are dates or datetimes (every one, in one of ``DATE_FORMATS``), of more than one day."""
    import pandas as pd

    text = values.astype(str).str.strip()
    if text.nunique() < 2 or not text.str.contains(r"\d[-/.]\d", regex=True).all():
        return False
    for form in DATE_FORMATS:
        parsed = pd.to_datetime(text, format=form, errors="coerce")
        if parsed.notna().all():
            return True
    return False


def infer_contract(df: pd.DataFrame, name: str, margin: float = 0.1) -> Contract:
    """Draft a contract from known-good data in ingest's layout (``target``, plus ``target_name`` for classes):
    numeric ranges widened by ``margin`` of their span, categories with their values, nullability, labels; a row
    number, id, free-text or empty column goes under ``ignored`` with the reason."""
    features: dict[str, FeatureSpec] = {}
    ignored: dict[str, str] = {}
    for column in df.columns:
        if column in (RAW_TARGET, RAW_LABEL):
            continue
        spec = infer_feature(df[column], margin)
        reason = ignored_because(str(column), df[column], spec)
        if reason is None:
            features[str(column)] = spec
        else:
            ignored[str(column)] = reason
    if not features:
        left_out = "; ".join(f"{column}: {why}" for column, why in ignored.items())
        raise DataContractError(
            f"no column to learn from: {left_out or 'the data has only its label'}. Add feature columns to the data"
        )
    if RAW_LABEL in df.columns:
        pairs = df[[RAW_TARGET, RAW_LABEL]].dropna().drop_duplicates()
        labels = {int(float(code)): str(label) for code, label in pairs.itertuples(index=False)}
        return Contract(name=name, features=features, labels=dict(sorted(labels.items())), ignored=ignored)
    values = _as_numbers(df[RAW_TARGET].dropna()).dropna()
    spec = _numeric_spec(values, False, margin) if len(values) else FeatureSpec()
    return Contract(
        name=name, task="regression", features=features, target=TargetSpec(min=spec.min, max=spec.max), ignored=ignored
    )
