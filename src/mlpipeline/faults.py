"""Crash injection for the tests that prove a crash leaves no residue (``MLPIPELINE_CRASH_AT=<checkpoint>``).

A checkpoint names a moment inside a stage (e.g. ``train.registered``: the model version exists, the stage's
outputs do not yet). When ``MLPIPELINE_CRASH_AT`` names it, the whole process group is killed with SIGKILL there,
as a power cut or ``kill -9`` would: no cleanup code runs, neither ours nor DVC's.
"""

from __future__ import annotations

import os
import signal

from mlpipeline.settings import env_settings


def checkpoint(name: str) -> None:
    """Kill this process group now if ``MLPIPELINE_CRASH_AT`` is ``name``; otherwise do nothing."""
    if env_settings().mlpipeline_crash_at == name:
        os.killpg(os.getpgrp(), signal.SIGKILL)
