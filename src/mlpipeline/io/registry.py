"""The MLflow model registry: version references, aliases, version tags.

Aliases are the truth about which version is trusted: ``champion`` (what serving answers with),
``previous-champion`` (what a rollback restores) and ``challenger`` (an experiment's candidate that passed the
gate, for comparison; it never answers in place of the champion). MLflow's deprecated stages are never used.

Version tags record facts: the lineage, ``mlpipeline.evaluated`` (false until evaluate scored the version;
an unevaluated version is never promoted), the gate's ``promotion`` decision and reason. The ``champion`` tag
is a convenience for searching the UI; it is kept on the current champion only, and repaired from the alias
whenever an alias moves.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError
from mlpipeline.io.tracking import client, translate_errors

logger = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous-champion"
CHALLENGER = "challenger"
EVALUATED = "mlpipeline.evaluated"
CHAMPION_TAG = "champion"


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        with translate_errors(f"reading alias {alias!r} of {name!r}"):
            raise


def resolve(name: str, ref: str) -> Any:
    """A model version from an alias (``champion``, ``previous-champion``, ``challenger``) or a version number."""
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


def version_of_run(name: str, run_id: str) -> str:
    """The version of ``name`` registered from ``run_id`` (the newest, if the run registered several)."""
    with translate_errors(f"finding the version of {name!r} from run {run_id}"):
        versions = client().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if not versions:
        raise MlpipelineError(
            f"run {run_id} registered no version of {name!r}: train it again (`dvc repro --force --single-item train`)"
        )
    return str(max(int(v.version) for v in versions))


def twin(name: str, experiment: str, model_md5: str, data_md5: str | None) -> tuple[str, str] | None:
    """A version of ``name`` already holding exactly these model bytes, trained on the same data by a run of
    ``experiment`` that finished, as ``(version, run id)`` (the newest, if several); None when there is none.

    Training again can give the same bytes: a train param that does not apply to the chosen model (``C`` for a
    random forest), a code change that does not change the fit. Such a model is that version, already
    registered (and evaluated and gated, or about to be): registering it again would leave a version that DVC
    never evaluates nor gates, as their inputs did not change.
    """
    from mlpipeline.io.tracking import MODEL_MD5_TAG

    if not data_md5:
        return None
    with translate_errors(f"looking for versions of {name!r} with model {model_md5}"):
        versions = client().search_model_versions(f"name='{name}'")
        same = [
            v for v in versions if v.tags.get(MODEL_MD5_TAG) == model_md5 and v.tags.get("data.train.md5") == data_md5
        ]
        for version in sorted(same, key=lambda v: int(v.version), reverse=True):
            run = client().get_run(version.run_id)
            if run.info.status == "FINISHED" and client().get_experiment(run.info.experiment_id).name == experiment:
                return str(version.version), str(version.run_id)
    return None


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set tags on a model version."""
    with translate_errors(f"tagging {name} version {version}"):
        for key, value in tags.items():
            client().set_model_version_tag(name, version, key, value)


def sync_champion_tag(name: str) -> None:
    """Make the ``champion`` tag say what the alias says: on the current champion, on no other version."""
    holder = alias_version(name, CHAMPION)
    with translate_errors(f"updating the {CHAMPION_TAG!r} tag of {name!r}"):
        registry = client()
        for version in registry.search_model_versions(f"name='{name}' and tags.`{CHAMPION_TAG}` = 'true'"):
            if str(version.version) != holder:
                registry.delete_model_version_tag(name, str(version.version), CHAMPION_TAG)
        if holder is not None:
            registry.set_model_version_tag(name, holder, CHAMPION_TAG, "true")


def promote(name: str, version: str, previous: str | None) -> None:
    """Point ``champion`` at ``version``; the old champion keeps ``previous-champion`` for rollback."""
    with translate_errors(f"moving the {CHAMPION!r} alias of {name!r} to version {version}"):
        registry = client()
        if previous is not None:
            registry.set_registered_model_alias(name, PREVIOUS, previous)
        registry.set_registered_model_alias(name, CHAMPION, version)
        if alias_version(name, CHALLENGER) == version:
            registry.delete_registered_model_alias(name, CHALLENGER)
    sync_champion_tag(name)


def set_challenger(name: str, version: str) -> None:
    """Point ``challenger`` at ``version`` (an experiment's candidate that passed the gate)."""
    with translate_errors(f"moving the {CHALLENGER!r} alias of {name!r} to version {version}"):
        client().set_registered_model_alias(name, CHALLENGER, version)


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
    sync_champion_tag(name)
    tag_version(name, current, {"rollback.demoted_at": stamp, "rollback.reason": reason})
    tag_version(name, previous, {"rollback.restored_at": stamp, "rollback.reason": reason})
    return current, previous


RETIRED_TAG = "retired.reason"
# Train's lone-feature scores (JSON: feature -> held-out score alone, highest first), read by the gate.
LONE_SCORES_TAG = "data.lone_feature_scores"
LONE_SCORES_KEPT = 10


def lone_scores_tag(scores: dict[str, float]) -> dict[str, str]:
    """The version tag of train's lone-feature scores: the highest few (a tag holds a few thousand characters)."""
    import json

    return {LONE_SCORES_TAG: json.dumps(dict(list(scores.items())[:LONE_SCORES_KEPT]))}


def lone_scores(tags: dict[str, str]) -> dict[str, float] | None:
    """A version's lone-feature scores, or None for a version trained before train measured them."""
    import json

    text = tags.get(LONE_SCORES_TAG)
    return None if text is None else {str(k): float(v) for k, v in json.loads(text).items()}


def retire(name: str, reason: str) -> str:
    """Take ``champion`` away from the version holding it (it turned out wrong), recording why; returns it.

    No version is champion afterwards (the server stops answering, its /ready says so); the next pipeline run
    promotes a new one through the gate, which never promotes a retired version again. ``previous-champion`` is
    left as it is: to bring that one back instead, use rollback.
    """
    if not reason.strip():
        raise ConfigError("retiring a champion needs a reason: mlpipeline retire --reason '...'")
    current = alias_version(name, CHAMPION)
    if current is None:
        raise MlpipelineError(f"cannot retire the champion of {name!r}: it has none")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with translate_errors(f"retiring {name!r} version {current}"):
        client().delete_registered_model_alias(name, CHAMPION)
    sync_champion_tag(name)
    tag_version(name, current, {"retired.at": stamp, RETIRED_TAG: reason})
    return current
