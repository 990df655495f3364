"""The raw data file (``data/raw/<name>.csv``): written by ingest, read column-wise with polars by validate and
preprocess, and read back as text by the contract drafter, so a draft sees exactly what validate will check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import polars as pl

from mlpipeline.core.columns import RAW_NULLS

if TYPE_CHECKING:
    import pandas as pd


def scan_raw(source: Path | BinaryIO) -> pl.LazyFrame:
    """A raw CSV as a ``LazyFrame`` of text columns, gaps (empty fields) as nulls: nothing is read until a
    query runs, and a streaming query reads the file in pieces, so memory does not grow with its size."""
    return pl.scan_csv(source, infer_schema=False, null_values=RAW_NULLS, raise_if_empty=False)


def write_chunk(handle: BinaryIO, chunk: pd.DataFrame, header: bool) -> None:
    """Append ``chunk`` as CSV (polars writes it about ten times faster than pandas): an empty text value is
    written as nothing, like a gap, never as a quoted empty string."""
    frame = pl.from_pandas(chunk)
    text = [name for name, kind in frame.schema.items() if kind == pl.String]
    if text:
        frame = frame.with_columns(pl.col(text).replace("", None))
    frame.write_csv(handle, include_header=header, line_terminator="\n")


def read_raw_text(source: Path | BinaryIO) -> pd.DataFrame:
    """A raw CSV as pandas text columns, gaps as NaN (what :func:`scan_raw` reads, as one frame)."""
    import pandas as pd

    return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=RAW_NULLS)
