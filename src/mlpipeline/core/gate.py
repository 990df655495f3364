"""Promotion gate rules: pure decisions over numbers the promote stage gathers.

The gate passes only if every check passes, in order: the version was evaluated, the data contract held for
its training data, the absolute thresholds are met, and the candidate beats the current champion re-scored on
the same test set by more than ``min_improvement`` (a tie never promotes). A check that could not be evaluated
is an error, and an error never promotes. In a DVC experiment a passing candidate becomes the ``challenger``,
not the champion: experiments are not production.
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


def threshold_checks(metrics: dict[str, float], minimums: dict[str, float]) -> list[Check]:
    """Check 2: each metric at or above its minimum (``min_accuracy`` -> ``accuracy``)."""
    checks = []
    for metric, minimum in minimums.items():
        value = metrics.get(metric)
        if value is None:
            checks.append(Check(name=f"min_{metric}", status="error", detail=f"metric {metric!r} missing"))
            continue
        ok = value >= minimum
        checks.append(
            Check(
                name=f"min_{metric}",
                status="pass" if ok else "fail",
                detail=f"{metric} {value:.4f} {'>=' if ok else '<'} {minimum:.4f}",
                value=value,
                threshold=minimum,
            )
        )
    return checks


def champion_check(metric: str, candidate: float, champion: float | None, min_improvement: float) -> Check:
    """Check 3: candidate > champion + min_improvement on the same test set (a tie fails); no champion passes."""
    if champion is None:
        return Check(name="vs_champion", status="pass", detail="no champion yet", value=candidate)
    floor = round(champion + min_improvement, 6)
    ok = round(candidate, 6) > floor
    return Check(
        name="vs_champion",
        status="pass" if ok else "fail",
        detail=(
            f"{metric} {candidate:.4f} {'>' if ok else '<='} champion {champion:.4f} + min_improvement "
            f"{min_improvement:.4f} (both scored on the same test set{'' if ok else '; a tie does not promote'})"
        ),
        value=candidate,
        threshold=floor,
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
