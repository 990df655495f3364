"""Preprocess: split the validated raw data into ``data/processed/{train,test}.<format>`` plus ``schema.json``.

Classes are split stratified (each class keeps its share in both parts); a regression target is split at
random. The schema (task, feature kinds and categories, labels) comes from the validation report, so train and
evaluate read the split exactly as validate checked it.

Large data: only the label column is read into memory to draw the split; the rows themselves stream from the
raw file into the outputs (CSV: the values as written, text; Parquet: typed, written one part at a time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET
from mlpipeline.core.schema import Schema
from mlpipeline.core.split import holdout_rows
from mlpipeline.errors import DataContractError
from mlpipeline.io.files import atomic_path, read_json, require_input, write_json
from mlpipeline.io.raw import scan_raw
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, PreprocessParams

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessResult:
    train_rows: int
    test_rows: int


def run(params: PreprocessParams, paths: Paths) -> PreprocessResult:
    """Split the raw data only if validate passed it; every output is replaced atomically."""
    validation, raw_file = paths.dep("data_validation"), paths.dep("raw")
    train_file, test_file, schema_file = paths.out("train"), paths.out("test"), paths.out("schema")
    report = read_json(validation, "validate")
    if not report.get("passed"):
        raise DataContractError(f"{validation} says the raw data failed validation: fix the data and rerun `dvc repro`")
    if not report.get("schema"):
        raise DataContractError(f"{validation} has no schema: rerun validate (`dvc repro validate`)")
    schema = Schema.model_validate(report["schema"])
    require_input(raw_file, "ingest")
    raw = scan_raw(raw_file)
    stratify = schema.task == "classification"
    # Only the class codes are held (8 bytes a row), parsed as they stream in; the rows stay in the file.
    labels = raw.select(target_codes(schema)).collect(engine="streaming").to_series().to_numpy() if stratify else None
    total = len(labels) if labels is not None else int(raw.select(pl.len()).collect(engine="streaming").item())
    try:
        test_rows = holdout_rows(total, params.test_size, params.seed, labels, schema.labels)
    except ValueError as exc:  # e.g. a test_size too small to hold one row per class
        raise DataContractError(f"cannot split {raw_file} with test_size={params.test_size}: {exc}") from exc
    train_part = ~rows_in(test_rows)
    train_rows = total - len(test_rows)
    if params.max_train_rows is not None and train_rows > params.max_train_rows:
        train_rows, train_part = params.max_train_rows, rows_in(sample_rows(total, test_rows, labels, params))
    del labels
    if train_file.suffix == ".parquet":
        table = raw.select(typed_columns(schema, raw.collect_schema().names()))
    else:
        table = raw.with_columns(target_codes(schema)) if stratify else raw
    rows = table.with_row_index(ROW)
    write_part(test_file, rows.filter(rows_in(test_rows)).drop(ROW))
    write_part(train_file, rows.filter(train_part).drop(ROW))
    write_json(schema_file, schema.model_dump(mode="json"))
    logger.info(
        "split %s into %d train%s / %d test rows (seed %d, %s)",
        raw_file,
        train_rows,
        f" (a sample: max_train_rows of {total - len(test_rows)})" if train_rows < total - len(test_rows) else "",
        len(test_rows),
        params.seed,
        schema.task,
    )
    return PreprocessResult(train_rows=train_rows, test_rows=len(test_rows))


ROW = "__mlpipeline_row"
PARQUET_ROW_GROUP = 1 << 20


def sample_rows(total: int, test_rows: np.ndarray, labels: np.ndarray | None, params: PreprocessParams) -> np.ndarray:
    """``params.max_train_rows`` of the ``total`` rows not in ``test_rows``, ascending: a seeded sample, stratified
    when ``labels`` (one class code per row) are given."""
    import numpy as np

    is_train = np.ones(total, dtype=bool)
    is_train[test_rows] = False
    train = np.flatnonzero(is_train)
    size = params.max_train_rows or len(train)
    kept: np.ndarray = train[holdout_rows(len(train), size, params.seed, None if labels is None else labels[train])]
    return kept


def rows_in(numbers: Any) -> pl.Expr:
    """Whether a row's number (the ROW column, polars' UInt32 row index) is one of ``numbers``."""
    return pl.col(ROW).is_in(pl.Series(numbers, dtype=pl.UInt32).implode())


def number(name: str, dtype: Any = pl.Float64) -> pl.Expr:
    """A raw text column parsed as numbers (validate accepted them, spaces around included)."""
    return pl.col(name).str.strip_chars().cast(pl.Float64).cast(dtype)


def target_codes(schema: Schema) -> pl.Expr:
    """Each row's class code: its label as written (``target_name``) looked up in the contract's labels, never
    ingest's numbering, which depends on which labels a file happens to hold (validate accepted every name)."""
    codes = {name: code for code, name in schema.labels.items()}
    return pl.col(RAW_LABEL).replace_strict(codes, return_dtype=pl.Int64).alias(RAW_TARGET)


def typed_columns(schema: Schema, columns: list[str]) -> list[pl.Expr]:
    """The raw text columns, in their order, as the model reads them: numbers as floats, the target as class
    codes (integers, by :func:`target_codes`) or values (floats), anything else (categories, class names) as
    text. Validate accepted numbers with spaces around them: those go."""
    classes = schema.task == "classification"

    def typed(name: str) -> pl.Expr:
        if name == RAW_TARGET:
            return target_codes(schema) if classes else number(name)
        return number(name) if name in schema.numeric else pl.col(name)

    return [typed(name) for name in columns]


def write_part(path: Path, part: pl.LazyFrame) -> None:
    """Stream one part of the split into ``path`` atomically. Parquet is written zstd-compressed in row groups of
    a fixed size, so the same data gives the same bytes however many threads ran (tested): DVC sees no change."""
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            part.sink_parquet(tmp, compression="zstd", row_group_size=PARQUET_ROW_GROUP)
        else:
            part.sink_csv(tmp, line_terminator="\n", include_header=True)


def main(params: Params, paths: Paths) -> PreprocessResult:
    """The DVC stage: split the validated raw data into ``data/processed/``."""
    return run(params.preprocess, paths)
