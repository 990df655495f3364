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


# What pandas reads as a missing value; raw files are read the same way by every stage (validate, preprocess:
# polars; train, evaluate: pandas), so "NA" in a number column is a gap, never a wrong type.
NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
             "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]  # fmt: skip
