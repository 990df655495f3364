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
