"""``mlpipeline ab report``: which version serves better, from the prediction log and the feedback beside it.

Per version and role (``champion``, ``challenger`` in an A/B test, ``shadow``): requests, their share, latency
p50/p95, labelled rows and the accuracy with its Wilson interval (regression: the mean absolute error with a
normal interval). The verdict compares the challenger with the champion at a chosen confidence:

- A/B (different requests): a two-proportion z-test on accuracy, and P(challenger better) from the two Beta
  posteriors (uniform priors, normal approximation); regression: a z-test on the absolute errors (Welch).
- shadow (the same rows, both scored): McNemar's test on the rows only one of them got right (regression: a
  paired z-test on the differences of absolute errors), plus how often the two agree.

Pure functions over the rows :func:`~mlpipeline.monitoring.predictions.read_log` gives and the feedback items
:func:`~mlpipeline.monitoring.predictions.read_feedback` gives; no third-party imports.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlpipeline.errors import MlpipelineError

ANSWERING = ("champion", "challenger")
NORMAL = statistics.NormalDist()


class NotEnoughDataError(MlpipelineError):
    """The log holds no comparison to make: no predictions, or no challenger or shadow traffic."""


@dataclass(frozen=True)
class Arm:
    """One version in one role, as served and as judged by feedback."""

    role: str
    version: str
    requests: int
    share: float  # of answered requests (champion, challenger); shadow: of the champion's requests
    latency_p50_ms: float
    latency_p95_ms: float
    labelled: int
    metric: str  # accuracy or mae
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Verdict:
    """The challenger against the champion: the test, its p-value and a sentence a person can act on."""

    champion: str
    challenger: str
    mode: str  # ab or shadow
    test: str
    difference: float  # challenger minus champion, in the metric's units
    p_value: float
    better: str  # challenger, champion or neither
    statement: str
    probability_better: float | None = None
    agreement: float | None = None
    compared_rows: int = 0


@dataclass(frozen=True)
class Report:
    arms: list[Arm]
    verdict: Verdict | None
    enough: bool
    message: str
    confidence: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_served(directory: Path, database_url: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The logged rows and the feedback, from the log's folder or its PostgreSQL database."""
    from mlpipeline.monitoring import predictions

    if database_url:
        return predictions.read_table(database_url), predictions.read_feedback_table(database_url)
    return predictions.read_log(directory), predictions.read_feedback(directory)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion: honest near 0 and 1 and for small n, unlike p +- z*se."""
    if n == 0:
        return 0.0, 1.0
    z = NORMAL.inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 or n successes the bound is exactly 0 or 1 (the formula gives it up to rounding).
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == n else centre + half)


def two_sided(z: float) -> float:
    return 2 * (1 - NORMAL.cdf(abs(z)))


def two_proportion(k1: int, n1: int, k2: int, n2: int) -> float:
    """p-value of a two-proportion z-test (pooled): do two independent samples share one success rate?"""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 1.0 if se == 0 else two_sided((k2 / n2 - k1 / n1) / se)


def mcnemar(champion_only: int, challenger_only: int) -> float:
    """p-value of McNemar's test (continuity-corrected): on the same rows, is one right more often?"""
    discordant = champion_only + challenger_only
    if discordant == 0:
        return 1.0
    return two_sided(max(0.0, abs(challenger_only - champion_only) - 1) / math.sqrt(discordant))


def probability_better(k1: int, n1: int, k2: int, n2: int) -> float:
    """P(challenger's accuracy > champion's) from Beta(1 + k, 1 + n - k) posteriors, normally approximated."""

    def beta(k: int, n: int) -> tuple[float, float]:
        a, b = 1 + k, 1 + n - k
        return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))

    (m1, v1), (m2, v2) = beta(k1, n1), beta(k2, n2)
    return NORMAL.cdf((m2 - m1) / math.sqrt(v1 + v2))


def mean_z(values: list[float]) -> float:
    """p-value that the mean of ``values`` is 0 (z-test; fine for the dozens of rows a verdict needs)."""
    if len(values) < 2:
        return 1.0
    se = statistics.stdev(values) / math.sqrt(len(values))
    return 1.0 if se == 0 else two_sided(statistics.fmean(values) / se)


def welch(a: list[float], b: list[float]) -> float:
    """p-value that two independent samples share a mean (Welch's z)."""
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return 1.0 if se == 0 else two_sided((statistics.fmean(b) - statistics.fmean(a)) / se)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _truth(item: dict[str, Any]) -> Any:
    return item["label"] if "label" in item else item["value"]


def _score(output: dict[str, Any], truth: Any) -> float:
    """1/0 for a right/wrong label; the absolute error for a value."""
    if "label" in output:
        return float(output["label"] == truth)
    return abs(float(output["value"]) - float(truth))


def _arm(key: tuple[str, str], rows: list[dict[str, Any]], scores: list[float], total: int, confidence: float) -> Arm:
    role, version = key
    latencies = {row["request"]: row["latency_ms"] for row in rows}
    metric = "mae" if rows and "label" not in rows[0]["output"] else "accuracy"
    value = low = high = None
    if scores and metric == "accuracy":
        value = statistics.fmean(scores)
        low, high = wilson(round(sum(scores)), len(scores), confidence)
    elif scores:
        value = statistics.fmean(scores)
        half = NORMAL.inv_cdf(0.5 + confidence / 2) * (
            statistics.stdev(scores) / math.sqrt(len(scores)) if len(scores) > 1 else math.inf
        )
        low, high = max(0.0, value - half), value + half
    lat = list(latencies.values())
    return Arm(
        role,
        version,
        len(latencies),
        len(latencies) / total if total else 0.0,
        _percentile(lat, 0.5),
        _percentile(lat, 0.95),
        len(scores),
        metric,
        value,
        low,
        high,
    )


def build_report(
    rows: list[dict[str, Any]], feedback: list[dict[str, Any]], min_labels: int = 30, confidence: float = 0.95
) -> Report:
    """Compare the challenger (or shadow) with the champion; ``enough`` is False below ``min_labels`` each.

    Raises:
        NotEnoughDataError: no logged predictions, or none by a challenger or in shadow.
    """
    if not rows:
        raise NotEnoughDataError("no predictions logged: serve some (mlpipeline serve) with the prediction log on")
    truth = {(item["request"], item["row"]): _truth(item) for item in feedback}  # the last label sent wins
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["role"], row["version"])].append(row)
    scores = {
        key: [
            _score(r["output"], truth[(r["request"], r["row"])]) for r in grouped if (r["request"], r["row"]) in truth
        ]
        for key, grouped in groups.items()
    }
    answered = len({r["request"] for r in rows if r["role"] in ANSWERING})
    champions = len({r["request"] for r in rows if r["role"] == "champion"})
    arms = [
        _arm(key, grouped, scores[key], champions if key[0] == "shadow" else answered, confidence)
        for key, grouped in sorted(groups.items(), key=lambda item: (ROLE_ORDER[item[0][0]], item[0][1]))
    ]
    champion = _main(arms, ("champion",))
    challenger = _main(arms, ("challenger", "shadow"))
    if challenger is None or champion is None:
        raise NotEnoughDataError(
            "no challenger or shadow traffic in the log: serve with MLPIPELINE_SERVE_AB_MODE=ab or shadow "
            "(or POST /ab) while a version has the challenger alias"
        )
    if min(champion.labelled, challenger.labelled) < min_labels:
        message = (
            f"not enough feedback for a verdict: champion v{champion.version} has {champion.labelled} labelled "
            f"rows, {challenger.role} v{challenger.version} {challenger.labelled} (at least {min_labels} each): "
            "send labels with POST /feedback"
        )
        return Report(arms, None, False, message, confidence)
    if challenger.role == "shadow":
        verdict = _paired(groups, truth, champion, challenger, confidence)
    else:
        verdict = _independent(scores, champion, challenger, confidence)
    return Report(arms, verdict, True, verdict.statement, confidence)


ROLE_ORDER = {"champion": 0, "challenger": 1, "shadow": 2}


def _main(arms: list[Arm], roles: tuple[str, ...]) -> Arm | None:
    """The arm of these roles with the most labels (then requests): the one a verdict is about."""
    candidates = [arm for arm in arms if arm.role in roles]
    return max(candidates, key=lambda arm: (arm.labelled, arm.requests), default=None)


def _independent(
    scores: dict[tuple[str, str], list[float]], champion: Arm, challenger: Arm, confidence: float
) -> Verdict:
    a, b = scores[("champion", champion.version)], scores[(challenger.role, challenger.version)]
    if champion.metric == "accuracy":
        k1, k2 = round(sum(a)), round(sum(b))
        p = two_proportion(k1, len(a), k2, len(b))
        chance = probability_better(k1, len(a), k2, len(b))
        return _verdict(
            champion, challenger, "ab", "two-proportion z-test", p, confidence, chance, None, len(a) + len(b)
        )
    p = welch(a, b)
    return _verdict(
        champion, challenger, "ab", "Welch z-test on absolute errors", p, confidence, None, None, len(a) + len(b)
    )


def _paired(
    groups: dict[tuple[str, str], list[dict[str, Any]]],
    truth: dict[tuple[str, int], Any],
    champion: Arm,
    challenger: Arm,
    confidence: float,
) -> Verdict:
    """Shadow: the same rows answered by both; compare them row by row."""
    theirs = {(r["request"], r["row"]): r["output"] for r in groups[("champion", champion.version)]}
    pairs = [
        (theirs[k], r["output"], k)
        for r in groups[("shadow", challenger.version)]
        if (k := (r["request"], r["row"])) in theirs
    ]
    if champion.metric == "accuracy":
        agreement = sum(c["label"] == s["label"] for c, s, _ in pairs) / len(pairs) if pairs else None
        judged = [(_score(c, truth[k]), _score(s, truth[k])) for c, s, k in pairs if k in truth]
        p = mcnemar(sum(c > s for c, s in judged), sum(s > c for c, s in judged))
        return _verdict(
            champion, challenger, "shadow", "McNemar's test (same rows)", p, confidence, None, agreement, len(judged)
        )
    differences = [_score(s, truth[k]) - _score(c, truth[k]) for c, s, k in pairs if k in truth]
    p = mean_z(differences)
    return _verdict(
        champion,
        challenger,
        "shadow",
        "paired z-test on absolute errors (same rows)",
        p,
        confidence,
        None,
        None,
        len(differences),
    )


def _verdict(
    champion: Arm,
    challenger: Arm,
    mode: str,
    test: str,
    p: float,
    confidence: float,
    chance: float | None,
    agreement: float | None,
    compared: int,
) -> Verdict:
    assert champion.value is not None
    assert challenger.value is not None
    difference = challenger.value - champion.value
    challenger_ahead = difference > 0 if champion.metric == "accuracy" else difference < 0
    significant = p < 1 - confidence and difference != 0
    better = ("challenger" if challenger_ahead else "champion") if significant else "neither"
    name = f"{challenger.role} v{challenger.version}"
    figures = f"{champion.metric} {challenger.value:.4f} vs {champion.value:.4f} for champion v{champion.version}"
    level = f"{confidence:.0%} confidence"
    if better == "challenger":
        statement = f"{name} is better: {figures} (p = {p:.3g}, {test}); significant at {level}"
    elif better == "champion":
        statement = f"champion v{champion.version} is better: {figures} (p = {p:.3g}, {test}); significant at {level}"
    else:
        statement = f"no significant difference at {level}: {figures} (p = {p:.3g}, {test}); collect more feedback"
    if chance is not None:
        statement += f"; P(challenger better) = {chance:.3f}"
    if agreement is not None:
        statement += f"; the two agree on {agreement:.1%} of rows"
    return Verdict(
        champion.version, challenger.version, mode, test, difference, p, better, statement, chance, agreement, compared
    )


def render(report: Report) -> str:
    """The report as a table and the verdict, for a terminal."""
    header = f"{'role':<11}{'version':>8}{'requests':>10}{'share':>8}{'p50 ms':>9}{'p95 ms':>9}{'labelled':>10}  metric"
    lines = [header]
    for arm in report.arms:
        judged = "-" if arm.value is None else f"{arm.metric} {arm.value:.4f} [{arm.low:.4f}, {arm.high:.4f}]"
        lines.append(
            f"{arm.role:<11}{arm.version:>8}{arm.requests:>10}{arm.share:>8.1%}{arm.latency_p50_ms:>9.2f}"
            f"{arm.latency_p95_ms:>9.2f}{arm.labelled:>10}  {judged}"
        )
    lines.append(f"(intervals: {report.confidence:.0%}; accuracy: Wilson)")
    lines.append(report.message)
    return "\n".join(lines)
