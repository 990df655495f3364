"""Promotion gate rules: pure decisions over numbers the promote stage gathers.

The gate passes only if every check passes, in order: the version was evaluated, the data contract held for
its training data, the absolute thresholds of its task are met, the candidate takes the same inputs as the
champion (a model of another data set never replaces it), and it beats the current champion re-scored on
the same test set by more than ``min_improvement`` (a tie never promotes; for RMSE and MAE lower is
better). A check that could not be evaluated is an error, and an error never promotes. In a DVC experiment a
passing candidate becomes the ``challenger``, not the champion: experiments are not production.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Status = Literal["pass", "fail", "error"]
Decision = Literal["promoted", "challenger", "rejected", "already-champion", "error"]


class Check(BaseModel):
    """One gate check with the values it compared."""

    name: str
    status: Status
    detail: str
    value: float | None = None
    threshold: float | None = None


class Verdict(BaseModel):
    """The gate's decision for one model version; written to metrics/promotion.json."""

    model: str
    version: str
    decision: Decision
    mode: Literal["workspace", "experiment", "explicit"] = "workspace"
    experiment: str | None = None
    champion_before: str | None
    champion_after: str | None
    checks: list[Check]

    @property
    def reason(self) -> str:
        """The checks that did not pass, in one line (empty when promoted)."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.status != "pass")


def evaluated_check(evaluated: bool) -> Check:
    """Check 0: evaluate scored this version (a version whose pipeline died before that is never promoted)."""
    if evaluated:
        return Check(name="evaluated", status="pass", detail="scored on the test set by evaluate")
    return Check(name="evaluated", status="fail", detail="never evaluated (its pipeline run did not finish)")


def contract_check(passed: bool | None, detail: str) -> Check:
    """Check 1: the data contract passed for the data this model was trained on."""
    if passed is None:
        return Check(name="data_contract", status="error", detail=detail)
    return Check(name="data_contract", status="pass" if passed else "fail", detail=detail)


def threshold_checks(
    metrics: dict[str, float], minimums: dict[str, float], maximums: dict[str, float] | None = None
) -> list[Check]:
    """Check 2: each metric at or above its floor (a check named ``min_<metric>``), at or below its ceiling
    (``max_<metric>``)."""
    limits = [(metric, bound, "min") for metric, bound in minimums.items()]
    limits += [(metric, bound, "max") for metric, bound in (maximums or {}).items()]
    checks = []
    for metric, bound, kind in limits:
        value = metrics.get(metric)
        if value is None:
            checks.append(Check(name=f"{kind}_{metric}", status="error", detail=f"metric {metric!r} missing"))
            continue
        ok = value >= bound if kind == "min" else value <= bound
        sign = (">=" if ok else "<") if kind == "min" else ("<=" if ok else ">")
        checks.append(
            Check(
                name=f"{kind}_{metric}",
                status="pass" if ok else "fail",
                detail=f"{metric} {value:.4f} {sign} {bound:.4f}",
                value=value,
                threshold=bound,
            )
        )
    return checks


def schema_check(candidate: dict[str, object], champion: dict[str, object] | None, champion_version: str) -> Check:
    """Check 3: the candidate takes the champion's inputs (names, kinds, task); a model of another data set
    must never replace it (nor can it be scored on this test set)."""
    if champion is None or champion == candidate:
        return Check(name="input_schema", status="pass", detail="same inputs as the champion")
    return Check(
        name="input_schema",
        status="fail",
        detail=(
            f"champion v{champion_version} takes {champion}, this candidate takes {candidate}: a different data "
            "set needs its own registered model (train.registered_model, by default <ingest.name>-classifier or "
            "-regressor)"
        ),
    )


def lone_feature_check(scores: dict[str, float] | None, allowed: set[str], maximum: float, classes: bool) -> Check:
    """Check: no feature alone predicts the label better than ``maximum`` on held-out rows (train's ``scores``),
    except those the contract lets (``allowed``); a version trained before the check was recorded passes."""
    metric = "balanced accuracy" if classes else "R²"
    if scores is None:
        return Check(name="lone_feature", status="pass", detail="not measured (trained before the check existed)")
    over = {name: score for name, score in scores.items() if score > maximum and name not in allowed}
    if not over:
        best = next(((n, v) for n, v in scores.items() if n not in allowed), None)
        shown = f" (best: {best[0]} {best[1]:.3f})" if best else ""
        return Check(name="lone_feature", status="pass", detail=f"no feature alone above {maximum:g}{shown}",
                     value=best[1] if best else None, threshold=maximum)  # fmt: skip
    named = ", ".join(f"{name} ({metric} {score:.3f})" for name, score in over.items())
    return Check(
        name="lone_feature",
        status="fail",
        detail=(
            f"{named} alone predict{'s' if len(over) == 1 else ''} the label on held-out rows (> {maximum:g}): a "
            "leak (an id, a value known only after the fact) or a trivial task. Move it to the contract's "
            "ignored:, or mark it may_predict_alone: true if it is genuine"
        ),
        value=max(over.values()),
        threshold=maximum,
    )


def champion_check(
    metric: str, candidate: float, champion: float | None, min_improvement: float, lower_is_better: bool = False
) -> Check:
    """Check 4: candidate better than champion by more than min_improvement on the same test set (a tie fails;
    for an error metric, lower is better); no champion passes."""
    if champion is None:
        return Check(name="vs_champion", status="pass", detail="no champion yet", value=candidate)
    if lower_is_better:
        bound = round(champion - min_improvement, 6)
        ok = round(candidate, 6) < bound
        compared = f"{'<' if ok else '>='} champion {champion:.4f} - min_improvement"
    else:
        bound = round(champion + min_improvement, 6)
        ok = round(candidate, 6) > bound
        compared = f"{'>' if ok else '<='} champion {champion:.4f} + min_improvement"
    return Check(
        name="vs_champion",
        status="pass" if ok else "fail",
        detail=(
            f"{metric} {candidate:.4f} {compared} {min_improvement:.4f} (both scored on the same test set"
            f"{'' if ok else '; a tie does not promote'})"
        ),
        value=candidate,
        threshold=bound,
    )


def decide(
    model: str,
    version: str,
    champion: str | None,
    checks: list[Check],
    experiment: str | None = None,
    mode: Literal["workspace", "experiment", "explicit"] = "workspace",
) -> Verdict:
    """Promote only when every check passed; any error means no alias moves. In an experiment (``mode`` is
    ``experiment``) a passing candidate becomes the challenger instead."""
    decision: Decision
    if champion == version:
        decision = "already-champion"
    elif any(c.status == "error" for c in checks):
        decision = "error"
    elif all(c.status == "pass" for c in checks):
        decision = "challenger" if mode == "experiment" else "promoted"
    else:
        decision = "rejected"
    return Verdict(
        model=model,
        version=version,
        decision=decision,
        mode=mode,
        experiment=experiment,
        champion_before=champion,
        champion_after=version if decision == "promoted" else champion,
        checks=checks,
    )
