"""The project's exceptions: every failure a user can cause or fix is one of these.

Library errors are translated at the io boundary (``raise ... from exc``); the CLI turns each into one clear
line and an exit code, and keeps the traceback for the debug log.
"""

from __future__ import annotations


class MlpipelineError(Exception):
    """Base of every error the CLI reports as a one-line message."""

    exit_code = 1


class ConfigError(MlpipelineError):
    """params.yaml, a contract file or the environment is missing, misspelt or ill-typed."""

    exit_code = 2


class DataContractError(MlpipelineError):
    """The data does not satisfy its contract (columns, dtypes, ranges, nulls, labels, row counts)."""

    exit_code = 3


class ServiceUnavailableError(MlpipelineError):
    """A service the stage needs (MLflow tracking server, S3, Docker) cannot be reached."""

    exit_code = 4
