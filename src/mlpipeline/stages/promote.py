"""Promote: run the gate on the version train registered; move ``champion`` only if every check passes.

A rejected model is a normal outcome (the stage succeeds and says why); a check that cannot be evaluated is
an error: nothing moves, the stage fails with the reason. Either way the verdict is written to
``metrics/promotion.json`` and logged to the run.

Experiments are not production: under ``dvc exp run`` (workspace, ``--temp`` or a queue) a candidate that
passes the gate gets the ``challenger`` alias and the champion stays, unless ``promote.from_experiments`` is
true. Such a candidate is promoted by an explicit act, ``mlpipeline promote --version N`` (the same gate, see
:func:`promote_version`), or by applying the experiment and running the pipeline in the workspace (``make run``
re-gates a verdict an experiment made).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from mlpipeline.core.gate import (
    Check,
    Verdict,
    champion_check,
    contract_check,
    decide,
    evaluated_check,
    lone_feature_check,
    schema_check,
    threshold_checks,
)
from mlpipeline.core.metrics import LOWER_IS_BETTER, task_metrics
from mlpipeline.core.schema import Schema, Task
from mlpipeline.errors import MlpipelineError
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import read_json, read_table, write_json
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, PromoteParams, env_settings

logger = logging.getLogger(__name__)

CONTRACT_TAG = "gate.data_contract"
Mode = Literal["workspace", "experiment", "explicit"]


def _contract(report_path: Path, version_tags: dict[str, str]) -> Check:
    try:
        report = read_json(report_path, "validate")
    except MlpipelineError as exc:
        return contract_check(None, str(exc))
    trained_on = version_tags.get("data.raw.md5")
    if trained_on is None:
        return contract_check(
            None, "the model version has no data.raw.md5 lineage tag: cannot tell what it was trained on"
        )
    if report.get("data_md5") != trained_on:
        return contract_check(
            False, f"validation report is for data {report.get('data_md5')}, model was trained on {trained_on}"
        )
    if not report.get("passed"):
        return contract_check(False, f"data {trained_on} failed its contract")
    return contract_check(True, f"data {trained_on} passed contract '{report.get('contract')}'")


def _inputs(schema: Schema) -> dict[str, object]:
    """What must match between champion and candidate: the task and each input's name and kind."""
    return {"task": schema.task, "inputs": {name: info.kind for name, info in schema.features.items()}}


def _vs_champion(
    params: PromoteParams, name: str, champion: str | None, metrics: dict[str, float], test: Any, schema: Schema
) -> list[Check]:
    metric = params.metric_for(schema.task)
    lower = metric in LOWER_IS_BETTER
    candidate = metrics.get(metric)
    if candidate is None:
        return [Check(name="vs_champion", status="error", detail=f"metric {metric!r} missing")]
    if champion is None:
        return [champion_check(metric, candidate, None, params.min_improvement, lower)]
    try:
        model, meta = tracking.load_model_with_meta(f"models:/{name}/{champion}")
        theirs = modeldir.schema_from_metadata(meta.get("metadata"), f"champion v{champion}")
    except Exception as exc:  # any failure to load the champion must fail closed, whatever raised it
        return [Check(name="vs_champion", status="error", detail=f"cannot load champion v{champion}: {exc}")]
    same_inputs = schema_check(_inputs(schema), _inputs(theirs), champion)
    if same_inputs.status != "pass":
        return [same_inputs]
    try:
        score = task_metrics(schema.task, schema.target(test), model.predict(theirs.model_input(test)))[metric]
    except Exception as exc:  # any failure to re-score the champion must fail closed, whatever raised it
        return [Check(name="vs_champion", status="error", detail=f"cannot re-score champion v{champion}: {exc}")]
    return [same_inputs, champion_check(metric, candidate, score, params.min_improvement, lower)]


def floors(params: PromoteParams, task: Task, metrics: dict[str, float]) -> list[Check]:
    """The floors and ceilings of ``promote`` that apply to ``task``'s metrics."""
    minimums, maximums = params.bounds(task)
    return threshold_checks(metrics, minimums, maximums)


def gate(
    params: PromoteParams,
    name: str,
    version: str,
    metrics: dict[str, float],
    contract: Check,
    test: Any,
    schema: Schema,
    mode: Mode,
    experiment: str | None = None,
) -> Verdict:
    """Decide for ``name`` v``version`` (scored ``metrics`` on ``test``, taking inputs per ``schema``) against the
    current champion."""
    champion = registry.alias_version(name, registry.CHAMPION)
    with tracking.translate_errors(f"reading {name} version {version}"):
        tags = dict(tracking.client().get_model_version(name, version).tags)
    checks = [
        evaluated_check(tags.get(registry.EVALUATED) == "true"),
        contract,
        *floors(params, schema.task, metrics),
    ]
    checks.append(
        lone_feature_check(
            registry.lone_scores(tags),
            {name for name, info in schema.features.items() if info.may_predict_alone},
            params.lone_feature_max,
            schema.task == "classification",
        )
    )
    if registry.RETIRED_TAG in tags:  # e.g. the same model again from the same data: it stays retired
        why = f"v{version} was retired ({tags[registry.RETIRED_TAG]}): change the data, features or model"
        checks.append(Check(name="not_retired", status="fail", detail=why))
    if champion != version:
        checks.extend(_vs_champion(params, name, champion, metrics, test, schema))
    return decide(name, version, champion, checks, experiment=experiment, mode=mode)


def apply(verdict: Verdict, run_id: str) -> None:
    """Move aliases and tag the version as the verdict says; log the verdict to the version's run."""
    import mlflow

    name, version = verdict.model, verdict.version
    contract = next((c for c in verdict.checks if c.name == "data_contract"), None)
    tags: dict[str, str] = {"promotion.mode": verdict.mode}
    if contract is not None and contract.status != "error":
        tags[CONTRACT_TAG] = contract.status
    if verdict.decision == "promoted":
        registry.promote(name, version, previous=verdict.champion_before)
        tags.update({"promotion": "promoted", "promotion.reason": "passed every check of the gate"})
    elif verdict.decision == "challenger":
        registry.set_challenger(name, version)
        tags.update({"promotion": "challenger", "promotion.reason": "passed the gate in an experiment"})
    elif verdict.decision == "rejected":
        tags.update({"promotion": "rejected", "promotion.reason": verdict.reason})
    registry.tag_version(name, version, tags)
    with tracking.resume_run(run_id), tracking.translate_errors("logging the verdict"):
        mlflow.set_tag("promotion", verdict.decision)
        mlflow.log_metrics({f"gate_{c.name}_passed": float(c.status == "pass") for c in verdict.checks})
        mlflow.log_dict(verdict.model_dump(mode="json"), f"promotion/verdict-{verdict.mode}.json")


def report(verdict: Verdict) -> None:
    """Say what the gate decided; raise when it could not decide (nothing moved)."""
    name, version, champion = verdict.model, verdict.version, verdict.champion_before
    if verdict.decision == "error":
        raise MlpipelineError(
            f"promotion gate could not decide for {name} v{version}, nothing promoted "
            f"(champion still {champion or 'none'}): {verdict.reason}"
        )
    if verdict.decision == "promoted":
        logger.info("PROMOTED %s v%s to champion (previous champion: %s)", name, version, champion or "none")
    elif verdict.decision == "challenger":
        logger.info(
            "CHALLENGER %s v%s passed the gate in experiment %s; champion stays %s. Promote it with "
            "`mlpipeline promote --version %s`",
            name,
            version,
            verdict.experiment,
            f"v{champion}" if champion else "none",
            version,
        )
    elif verdict.decision == "rejected":
        logger.warning(
            "REJECTED %s v%s, champion stays %s: %s",
            name,
            version,
            f"v{champion}" if champion else "none",
            verdict.reason,
        )
    elif verdict.reason:  # the champion itself, against a gate that changed since it was promoted
        logger.warning(
            "%s v%s is the champion but no longer passes the gate: %s. It stays champion (nothing is demoted "
            "by itself): train a better model, `mlpipeline rollback --reason ...` to the previous champion, or "
            "`mlpipeline retire --reason ...` to have none",
            name,
            version,
            verdict.reason,
        )
    else:
        logger.info("%s v%s is already the champion", name, version)


def run(params: PromoteParams, paths: Paths) -> Verdict:
    """Gate the version train registered for the model in ``models/``; apply and record the verdict."""
    settings = env_settings()
    tracking.configure()
    meta = read_json(paths.dep("model_metadata"), "train")
    metrics = read_json(paths.dep("metrics"), "evaluate")
    name = meta["registered_model"]
    run_id = tracking.find_model_run(meta["experiment"], meta["model_md5"], settings.dvc_exp_name)
    version = registry.version_of_run(name, run_id)
    with tracking.translate_errors(f"reading {name} version {version}"):
        tags = dict(tracking.client().get_model_version(name, version).tags)
    mode: Mode = "experiment" if settings.in_experiment and not params.from_experiments else "workspace"
    schema = modeldir.schema_of(paths.dep("model"))
    verdict = gate(
        params,
        name,
        version,
        metrics,
        _contract(paths.dep("data_validation"), tags),
        read_table(paths.dep("test"), "preprocess", schema.csv_dtypes()),
        schema,
        mode,
        settings.dvc_exp_name,
    )
    write_json(paths.out("promotion"), verdict.model_dump(mode="json"))
    apply(verdict, run_id)
    report(verdict)
    return verdict


def promote_version(params: PromoteParams, name: str, version: str, locate: Callable[[str], Path | None]) -> Verdict:
    """The explicit act: gate an already evaluated version (e.g. an experiment's challenger) now, outside DVC.

    Its floors use its recorded test metrics; the champion is re-scored on the version's own test set, read from
    the DVC cache by the hash its lineage records; its data contract result is the one the promote stage
    recorded when it first gated it. Anything missing fails closed. ``locate`` finds a file by its md5 (the
    CLI passes the DVC cache lookup).
    """
    with tracking.translate_errors(f"reading {name} version {version}"):
        mv = registry.resolve(name, version)
        run = tracking.client().get_run(mv.run_id)
    version = str(mv.version)
    tags = dict(mv.tags)
    metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
    recorded = tags.get(CONTRACT_TAG)
    contract = (
        contract_check(recorded == "pass", f"recorded by the promote stage: {recorded}")
        if recorded in ("pass", "fail")
        else contract_check(None, f"v{version} was never gated by the promote stage: its data contract is unknown")
    )
    test_md5 = tags.get("data.test.md5")
    test_file = locate(test_md5) if test_md5 else None
    if test_file is None:
        raise MlpipelineError(
            f"the test set of {name} v{version} (md5 {test_md5 or 'unknown'}) is not in the DVC cache, so the "
            "champion cannot be re-scored on it: `dvc pull` (or `dvc exp apply` its experiment) and retry"
        )
    _, meta = tracking.load_model_with_meta(f"models:/{name}/{version}")
    schema = modeldir.schema_from_metadata(meta.get("metadata"), f"{name} v{version}")
    test = read_table(test_file, "preprocess", schema.csv_dtypes())
    verdict = gate(params, name, version, metrics, contract, test, schema, "explicit")
    apply(verdict, mv.run_id)
    report(verdict)
    return verdict


def main(params: Params, paths: Paths) -> Verdict:
    """The DVC stage."""
    return run(params.promote, paths)
