"""The command-line tools mlpipeline runs, taken from its own environment: ``.venv/bin/mlpipeline push`` works
without the venv activated, and never runs some other DVC that happens to be first on PATH."""

from __future__ import annotations

import sys
from pathlib import Path


def dvc_command() -> str:
    """The dvc beside this Python (its environment's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else "dvc"
