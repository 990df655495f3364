"""The project's exceptions and exit codes: every failure a user can cause or fix is one of these.

Library errors are translated at the io boundary (``raise ... from exc``); the CLI turns each into one clear
line and an exit code, and keeps the traceback for the debug log (``MLPIPELINE_DEBUG=1``).

Exit codes (the README's table is checked against this one by a test):

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success
1     an error with a message saying what to do (e.g. a missing input: run the stage before; a full disk)
2     configuration: params.yaml, a data contract, the environment or a command's arguments
3     data: the data breaks its contract, or cannot be read
4     a service is unreachable (MLflow tracking server, S3, Docker)
5     ``mlpipeline reproduce``: rebuilt, but the result differs from what was recorded (MISMATCH)
6     ``mlpipeline reproduce``: cannot be rebuilt faithfully (UNREPRODUCIBLE), the reasons named
7     ``mlpipeline monitor``: the recent predictions drifted from the champion's training data
70    internal error: a bug in mlpipeline, never caused by your data (please report it)
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_SERVICE = 4
EXIT_MISMATCH = 5
EXIT_UNREPRODUCIBLE = 6
EXIT_DRIFT = 7
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def exit_codes() -> dict[int, str]:
    """Each exit code's meaning, from the table above (the one place it is written)."""
    import re

    table = re.findall(r"^(\d+) +(.+)$", __doc__ or "", re.MULTILINE)
    return {int(code): meaning.replace("``", "`") for code, meaning in table}


class MlpipelineError(Exception):
    """Base of every error the CLI reports as a one-line message."""

    exit_code = EXIT_ERROR


class ConfigError(MlpipelineError):
    """params.yaml, a contract file, the environment or an argument is missing, misspelt or ill-typed."""

    exit_code = EXIT_CONFIG


class DataContractError(MlpipelineError):
    """The data does not satisfy its contract (columns, dtypes, ranges, nulls, labels, row counts)."""

    exit_code = EXIT_DATA


class ServiceUnavailableError(MlpipelineError):
    """A service the stage needs (MLflow tracking server, S3, Docker) cannot be reached."""

    exit_code = EXIT_SERVICE


class DiskFullError(MlpipelineError):
    """No space left (or a quota reached) on the file system an output is written to."""

    def __init__(self, path: Path) -> None:
        import shutil

        folder = path.parent
        try:
            folder = next((p for p in (path, *path.parents) if p.exists()), Path("."))
            free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free on the file system of {folder}"
        except OSError as exc:  # a folder we may not look into: the message still names the path
            free = f"free space unknown: {exc.strerror}"
        super().__init__(
            f"no space left on the disk writing {path} ({free}): free some space there (`df -h {folder}`), then "
            "run again"
        )


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during, nearest first (each once: chains can loop)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def disk_full(exc: BaseException, path: Path | None = None) -> DiskFullError | None:
    """``exc`` as a :class:`DiskFullError` if a full disk is anywhere in its chain (libraries wrap it: MLflow's
    model saving reports skops and cloudpickle), naming ``path``, or else the file the OS named."""
    import errno

    for current in causes(exc):
        if isinstance(current, DiskFullError):
            return current
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFullError(path or Path(str(current.filename or Path.cwd())))
    return None


# The team stack's services, as a URL names them from the host (loopback) or from a compose container.
TEAM_STACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "minio", "mlflow", "postgres"})


def bring_up_hint(url: str | None) -> str:
    """What to do about a service at ``url`` that does not answer: start the team stack when the URL is one of
    its services; otherwise (DagsHub, AWS, a company server) `make up` would not help: check the network."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname if url else None
    if host in TEAM_STACK_HOSTS:
        return "start the team stack (`make up`)"
    return "check your network connection and that the URL is right"
