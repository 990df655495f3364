"""Column names every stage agrees on, and how any source's column names are normalized.

A module of its own (no third-party imports) so that the stages that only need the names do not import the
contract's validation library.
"""

from __future__ import annotations

import re

RAW_TARGET = "target"
RAW_LABEL = "target_name"


def snake_case(name: str) -> str:
    """``'sepal length (cm)'`` -> ``'sepal_length_cm'``: column names that are safe everywhere."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_") or "column"


# What a data file may write for a missing value (``ingest.missing`` defaults to it): ingest turns each of these,
# alone in a field after trimming whitespace, into a gap. Matched exactly: "na" or "none" may be real categories.
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "#N/A", "<NA>", "NaN", "nan", "null", "NULL", "None", "?", "-")

# The only gap a raw file holds (ingest wrote every missing-value token as an empty field), read the same way by
# every stage (validate, preprocess: polars; train, evaluate: pandas), so "NA" kept as a category stays text.
RAW_NULLS = [""]
