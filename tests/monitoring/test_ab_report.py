"""`mlpipeline ab report`: the statistics, the verdicts, and the command over a real log and feedback."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mlpipeline.cli import main
from mlpipeline.monitoring.ab import NotEnoughDataError, build_report, mcnemar, two_proportion, wilson
from mlpipeline.monitoring.predictions import FeedbackStore, PredictionLog


def served(role: str, version: str, request: str, labels: list[str], latency: float = 1.0) -> list[dict[str, Any]]:
    """Rows as read_log gives them: one per label the version answered for ``request``."""
    return [
        {"request": request, "role": role, "version": version, "latency_ms": latency, "row": n, "output": {"label": x}}
        for n, x in enumerate(labels)
    ]


def ab_traffic(champion_right: int, challenger_right: int, n: int = 200) -> tuple[list[dict], list[dict]]:
    """n labelled requests each, the given number answered right; one row per request."""
    rows, feedback = [], []
    for arm, version, right in (("champion", "1", champion_right), ("challenger", "2", challenger_right)):
        for i in range(n):
            request = f"{arm}-{i}"
            rows += served(arm, version, request, ["a"], latency=float(i % 10))
            feedback.append({"request": request, "row": 0, "label": "a" if i < right else "b"})
    return rows, feedback


def test_wilson_interval_matches_the_textbook() -> None:
    low, high = wilson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)  # the Wilson upper bound for 0 of 10 at 95%
    low, high = wilson(81, 263)
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))


def test_a_clearly_better_challenger_wins_with_its_confidence() -> None:
    report = build_report(*ab_traffic(champion_right=150, challenger_right=185))
    assert report.enough
    verdict = report.verdict
    assert verdict is not None
    assert (verdict.better, verdict.mode, verdict.test) == ("challenger", "ab", "two-proportion z-test")
    assert verdict.difference == pytest.approx(0.175)
    assert verdict.p_value == pytest.approx(two_proportion(150, 200, 185, 200))
    assert verdict.p_value < 0.001
    assert verdict.probability_better is not None
    assert verdict.probability_better > 0.999
    assert "challenger v2 is better" in verdict.statement
    assert "significant at 95% confidence" in verdict.statement
    arms = {(a.role, a.version): a for a in report.arms}
    assert arms[("champion", "1")].share == pytest.approx(0.5)
    assert arms[("challenger", "2")].value == pytest.approx(0.925)
    assert arms[("challenger", "2")].latency_p50_ms == 4.0
    assert arms[("challenger", "2")].latency_p95_ms == 9.0


def test_a_small_difference_is_no_verdict_and_the_champion_can_win() -> None:
    even = build_report(*ab_traffic(champion_right=150, challenger_right=155)).verdict
    assert even is not None
    assert even.better == "neither"
    assert "no significant difference at 95% confidence" in even.statement
    worse = build_report(*ab_traffic(champion_right=185, challenger_right=150)).verdict
    assert worse is not None
    assert worse.better == "champion"


def test_shadow_compares_the_same_rows_and_reports_agreement() -> None:
    rows, feedback = [], []
    for i in range(100):
        truth = "a"
        champion_label = "a" if i < 70 else "b"  # right on 70
        shadow_label = "a" if i < 90 else "b"  # right on 90, agrees with the champion on 80
        rows += served("champion", "1", f"r{i}", [champion_label])
        rows += served("shadow", "2", f"r{i}", [shadow_label], latency=3.0)
        feedback.append({"request": f"r{i}", "row": 0, "label": truth})
    report = build_report(rows, feedback)
    verdict = report.verdict
    assert verdict is not None
    assert (verdict.mode, verdict.test) == ("shadow", "McNemar's test (same rows)")
    assert verdict.agreement == pytest.approx(0.8)
    assert verdict.p_value == pytest.approx(mcnemar(0, 20))
    assert verdict.better == "challenger"
    shadow = next(a for a in report.arms if a.role == "shadow")
    assert shadow.share == pytest.approx(1.0)  # every champion request was shadowed


def test_regression_is_judged_by_mean_absolute_error() -> None:
    rng = random.Random(3)
    rows, feedback = [], []
    for i in range(80):
        truth = rng.uniform(0, 10)
        for role, version, noise in (("champion", "1", 2.0), ("challenger", "2", 0.2)):
            request = f"{role}-{i}"
            rows.append(
                {"request": request, "role": role, "version": version, "latency_ms": 1.0, "row": 0,
                 "output": {"value": truth + rng.uniform(-noise, noise)}}
            )  # fmt: skip
            feedback.append({"request": request, "row": 0, "value": truth})
    verdict = build_report(rows, feedback).verdict
    assert verdict is not None
    assert verdict.better == "challenger"
    assert verdict.difference < 0  # a lower error
    assert "mae" in verdict.statement


def test_too_little_feedback_gives_no_verdict_and_says_what_to_do() -> None:
    rows, feedback = ab_traffic(champion_right=5, challenger_right=9, n=10)
    report = build_report(rows, feedback, min_labels=30)
    assert not report.enough
    assert report.verdict is None
    assert "at least 30 each" in report.message
    assert "POST /feedback" in report.message


def test_nothing_to_compare_is_a_clear_error() -> None:
    with pytest.raises(NotEnoughDataError, match="no predictions logged"):
        build_report([], [])
    with pytest.raises(NotEnoughDataError, match="no challenger or shadow traffic"):
        build_report(served("champion", "1", "r1", ["a"]), [])


def write_log(directory: Path, champion_right: int, challenger_right: int, n: int = 60) -> None:
    """What a server in A/B mode writes: requests in the log, then labels for them beside it."""
    log = PredictionLog(directory)
    labels = []
    for role, version, right in (("champion", "1", champion_right), ("challenger", "2", challenger_right)):
        for i in range(n):
            request = f"{version}-{i}"
            answer = {"model": "m", "version": version, "request_id": request, "predictions": [{"label": "a"}]}
            log.record(0.5, b'{"rows":[{"x":1.0}]}', json.dumps(answer).encode(), 1, request, role)
            labels.append({"request": request, "row": 0, "label": "a" if i < right else "b"})
    log.close()
    FeedbackStore(directory).write(labels)


def test_the_command_reads_the_log_and_the_feedback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_log(tmp_path / "log", champion_right=40, challenger_right=58)
    assert main(["ab", "report", "--log-dir", str(tmp_path / "log")]) == 0
    out = capsys.readouterr().out
    assert "challenger v2 is better" in out
    assert "accuracy 0.9667 [" in out
    assert main(["ab", "report", "--log-dir", str(tmp_path / "log"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"]["better"] == "challenger"
    assert {(a["role"], a["version"], a["requests"], a["labelled"]) for a in report["arms"]} == {
        ("champion", "1", 60, 60),
        ("challenger", "2", 60, 60),
    }


def test_the_command_exits_non_zero_without_enough_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ab", "report", "--log-dir", str(tmp_path / "empty")]) == 1
    assert "no predictions logged" in capsys.readouterr().err
    write_log(tmp_path / "log", champion_right=10, challenger_right=12, n=12)
    assert main(["ab", "report", "--log-dir", str(tmp_path / "log"), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["enough"] is False  # the figures still printed, for machines too
    assert "not enough feedback for a verdict" in captured.err
    assert main(["ab", "report", "--confidence", "1.5"]) == 2  # a bad argument is a usage error
