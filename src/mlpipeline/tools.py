"""The command-line tools mlpipeline runs, taken from its own environment: ``.venv/bin/mlpipeline push`` works
without the venv activated, and never runs some other DVC that happens to be first on PATH."""

from __future__ import annotations

import sys
from pathlib import Path


def dvc_command() -> str:
    """The dvc beside this Python (its environment's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else "dvc"


def own_environment_first() -> None:
    """Put this environment's bin/ first on PATH, for every process mlpipeline starts: DVC starts its experiment
    queue's workers as a bare ``dvc`` from PATH (dvc/repo/experiments/queue/celery.py), so without this
    ``.venv/bin/mlpipeline exp --run-all`` with the venv not activated would leave its experiments queued with no
    worker, and a worker could be another environment's DVC."""
    import os

    here = Path(sys.executable).parent
    if not (here / "dvc").is_file():
        return
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != str(here):
        os.environ["PATH"] = f"{here}{os.pathsep}{path}" if path else str(here)
