"""What every entry point shares: logging to stderr, and one mapping from failures to a line and an exit code.

Both the stage runner (``python -m mlpipeline.stages``, what dvc.yaml calls) and the ``mlpipeline`` CLI run their
work through :func:`guarded`, so every command fails the same way: one line naming what failed and what to do,
an exit code from :mod:`mlpipeline.errors`, the traceback only with ``MLPIPELINE_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from mlpipeline.errors import EXIT_CONFIG, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, MlpipelineError, disk_full

logger = logging.getLogger("mlpipeline")

# Libraries that would otherwise log at INFO or print progress bars into the stage output.
NOISY = ("mlflow", "alembic", "urllib3", "botocore", "docker", "matplotlib")


def debug_enabled() -> bool:
    """``MLPIPELINE_DEBUG`` from the environment or .env (false when the settings cannot be read)."""
    try:
        from mlpipeline.settings import env_settings

        return env_settings().mlpipeline_debug
    except (MlpipelineError, ImportError):  # reported by whatever reads the settings (or imports) next
        return False


def configure_logging() -> None:
    """Log to stderr: rich on a terminal, plain lines otherwise (DVC, CI, files).

    MLflow is told not to install its own handlers or progress bars and not to send telemetry (these machines,
    and many users', have no network beyond their own services).
    """
    for name, value in (
        ("MLFLOW_CONFIGURE_LOGGING", "false"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "true"),
    ):
        os.environ.setdefault(name, value)
    debug = debug_enabled()
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)


def guarded(work: Callable[[], int | None]) -> int:
    """Run ``work``; return its exit code, or the code of the failure after logging it as one line."""
    try:
        code = work()
    except KeyboardInterrupt:
        logger.error("interrupted")
        return EXIT_INTERRUPTED
    except MlpipelineError as exc:
        logger.debug("traceback", exc_info=True)
        exc = disk_full(exc) or exc  # a full disk under an MLflow error: named as what it is
        logger.error("%s", exc)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] != "mlpipeline":  # a Python without the project's environment
            logger.error(
                "%s lacks the package %r that this needs: run `make setup` (or set MLPIPELINE_PYTHON to the "
                "project's .venv/bin/python)",
                sys.executable,
                exc.name,
            )
            return EXIT_CONFIG
        logger.debug("traceback", exc_info=True)
        logger.error("internal error (%s): a bug in mlpipeline. Report it", exc)
        return EXIT_INTERNAL
    except Exception as exc:
        logger.debug("traceback", exc_info=True)
        full = disk_full(exc)
        if full is not None:  # whatever library wrapped it (MLflow's model saving names skops, not the disk)
            logger.error("%s", full)
            return full.exit_code
        logger.error(
            "internal error (%s: %s): a bug in mlpipeline, not in your data. Rerun with MLPIPELINE_DEBUG=1 "
            "for the traceback and report it",
            type(exc).__name__,
            exc,
        )
        return EXIT_INTERNAL
    return EXIT_OK if code is None else code
