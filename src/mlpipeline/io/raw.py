"""The raw data file (``data/raw/<name>.csv``) read column-wise with polars, by validate and preprocess."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import polars as pl

from mlpipeline.core.columns import NA_VALUES


def scan_raw(source: Path | BinaryIO) -> pl.LazyFrame:
    """A raw CSV as a ``LazyFrame`` of text columns, gaps (``NA_VALUES``) as nulls: nothing is read until a
    query runs, and a streaming query reads the file in pieces, so memory does not grow with its size."""
    return pl.scan_csv(source, infer_schema=False, null_values=NA_VALUES, raise_if_empty=False)
