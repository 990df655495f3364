"""Promote: run the gate on the version train registered; move ``champion`` only if every check passes.

A rejected model is a normal outcome (the stage succeeds and says why); a check that cannot be evaluated is
an error: nothing moves, the stage fails with the reason. Either way the verdict is written to
``metrics/promotion.json`` and logged to the run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlpipeline.core.gate import Check, Verdict, champion_check, contract_check, decide, threshold_checks
from mlpipeline.core.metrics import classification_metrics
from mlpipeline.core.split import features_and_target
from mlpipeline.errors import MlpipelineError
from mlpipeline.io import registry, tracking
from mlpipeline.io.files import read_csv, read_json, write_json
from mlpipeline.settings import PromoteParams
from mlpipeline.stages.evaluate import METRICS
from mlpipeline.stages.preprocess import TEST
from mlpipeline.stages.train import METADATA
from mlpipeline.stages.validate import REPORT

logger = logging.getLogger(__name__)

VERDICT = Path("metrics/promotion.json")


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


def _vs_champion(params: PromoteParams, name: str, champion: str | None, metrics: dict[str, float]) -> Check:
    candidate = metrics.get(params.compare_metric)
    if candidate is None:
        return Check(name="vs_champion", status="error", detail=f"metric {params.compare_metric!r} missing")
    if champion is None:
        return champion_check(params.compare_metric, candidate, None, params.tolerance)
    try:
        model = tracking.load_model(f"models:/{name}/{champion}")
        X, y = features_and_target(read_csv(TEST, "preprocess"))
        score = classification_metrics(y, model.predict(X))[params.compare_metric]
    except Exception as exc:  # any failure to re-score the champion must fail closed, whatever raised it
        return Check(name="vs_champion", status="error", detail=f"cannot re-score champion v{champion}: {exc}")
    return champion_check(params.compare_metric, candidate, score, params.tolerance)


def run(params: PromoteParams, metadata: Path = METADATA, report: Path = REPORT) -> Verdict:
    """Gate the version named in ``metadata``; apply and record the verdict."""
    import mlflow

    meta = read_json(metadata, "train")
    metrics = read_json(METRICS, "evaluate")
    name, version = meta["registered_model"], str(meta["version"])
    tracking.configure()
    champion = registry.alias_version(name, registry.CHAMPION)
    with tracking.translate_errors(f"reading {name} version {version}"):
        tags = dict(registry.client().get_model_version(name, version).tags)

    checks = [
        _contract(report, tags),
        *threshold_checks(metrics, {"accuracy": params.min_accuracy, "f1_macro": params.min_f1_macro}),
    ]
    if champion != version:
        checks.append(_vs_champion(params, name, champion, metrics))
    verdict = decide(name, version, champion, checks)
    write_json(VERDICT, verdict.model_dump(mode="json"))

    if verdict.decision == "promoted":
        registry.promote(name, version, previous=champion)
        registry.tag_version(name, version, {"promotion": "champion"})
    elif verdict.decision == "rejected":
        registry.tag_version(name, version, {"promotion": "rejected", "promotion.reason": verdict.reason})
    with tracking.resume_run(meta["run_id"]), tracking.translate_errors("logging the verdict"):
        mlflow.set_tag("promotion", verdict.decision)
        mlflow.log_metrics({f"gate_{c.name}_passed": float(c.status == "pass") for c in verdict.checks})
        mlflow.log_artifact(str(VERDICT), artifact_path="promotion")

    if verdict.decision == "error":
        raise MlpipelineError(
            f"promotion gate could not decide for {name} v{version}, nothing promoted "
            f"(champion still {champion or 'none'}): {verdict.reason}"
        )
    if verdict.decision == "promoted":
        logger.info("PROMOTED %s v%s to champion (previous champion: %s)", name, version, champion or "none")
    elif verdict.decision == "rejected":
        logger.warning(
            "REJECTED %s v%s, champion stays %s: %s",
            name,
            version,
            f"v{champion}" if champion else "none",
            verdict.reason,
        )
    else:
        logger.info("%s v%s is already the champion", name, version)
    return verdict
