"""The MLflow model registry: version references, the ``champion``/``previous-champion`` aliases, version tags.

Promotion and rollback move aliases only (MLflow's deprecated stages are never used). Every registry call is
wrapped so a failure becomes one of our errors and never leaves a half-moved alias pair behind silently.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError
from mlpipeline.io.tracking import translate_errors

logger = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous-champion"


def client() -> Any:
    """An MlflowClient on the configured tracking URI (call ``tracking.configure()`` first)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        with translate_errors(f"reading alias {alias!r} of {name!r}"):
            raise


def resolve(name: str, ref: str) -> Any:
    """A model version from ``champion``, ``previous-champion`` or a version number."""
    with translate_errors(f"looking up {name} {ref}"):
        if ref.isdigit():
            from mlflow.exceptions import MlflowException

            try:
                return client().get_model_version(name, ref)
            except MlflowException as exc:
                raise ConfigError(f"model {name!r} has no version {ref}") from exc
        version = alias_version(name, ref)
        if version is None:
            raise ConfigError(f"model {name!r} has no {ref!r} alias yet: run the pipeline (`make run`) first")
        return client().get_model_version(name, version)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set tags on a model version."""
    with translate_errors(f"tagging {name} version {version}"):
        for key, value in tags.items():
            client().set_model_version_tag(name, version, key, value)


def promote(name: str, version: str, previous: str | None) -> None:
    """Point ``champion`` at ``version``; the old champion keeps ``previous-champion`` for rollback."""
    with translate_errors(f"moving the {CHAMPION!r} alias of {name!r} to version {version}"):
        registry = client()
        if previous is not None:
            registry.set_registered_model_alias(name, PREVIOUS, previous)
        registry.set_registered_model_alias(name, CHAMPION, version)


def rollback(name: str, reason: str) -> tuple[str, str]:
    """Move ``champion`` back to ``previous-champion``; returns (demoted, restored) versions.

    The ``previous-champion`` alias is removed afterwards, so a second rollback cannot bring the demoted
    version back. Both versions are tagged with the reason and time.
    """
    if not reason.strip():
        raise ConfigError("a rollback needs a reason: mlpipeline rollback --reason '...'")
    current = alias_version(name, CHAMPION)
    previous = alias_version(name, PREVIOUS)
    if current is None or previous is None:
        raise MlpipelineError(
            f"cannot roll back {name!r}: it has no {'champion' if current is None else 'previous-champion'} alias"
        )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with translate_errors(f"rolling back {name!r} from version {current} to {previous}"):
        registry = client()
        registry.set_registered_model_alias(name, CHAMPION, previous)
        registry.delete_registered_model_alias(name, PREVIOUS)
    tag_version(name, current, {"rollback.demoted_at": stamp, "rollback.reason": reason})
    tag_version(name, previous, {"rollback.restored_at": stamp, "rollback.reason": reason})
    return current, previous
