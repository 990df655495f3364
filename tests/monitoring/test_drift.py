"""Drift tests: alarms on shifted data, rarely on fresh samples of the same distribution, and the params."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlpipeline.errors import ConfigError
from mlpipeline.monitoring.drift import categorical_score, column_drift, compare, served_frame
from mlpipeline.monitoring.reference import PREDICTION
from mlpipeline.settings import CategoricalDrift, MonitorParams, NumericDrift, parse_params
from tests import datasets

KINDS = {**dict.fromkeys(datasets.IRIS_FEATURES, "numeric"), PREDICTION: "categorical"}
SEEDS = 300


def iris_like(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    """Fresh Iris-like rows with the class as the prediction (see :func:`tests.datasets.iris_like`)."""
    frame, classes = datasets.iris_like(rng, rows, shift)
    frame[PREDICTION] = pd.Series(classes, dtype=object)
    return frame


def alarm_rates(shift: float, params: MonitorParams, seeds: int = SEEDS) -> tuple[float, float]:
    """Share of seeds whose check says drift, and share of column tests that do (training-sized reference)."""
    checks = columns = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        summary = compare(iris_like(rng, 120), iris_like(rng, 300, shift), KINDS, params)
        checks += summary.drifted
        columns += len(summary.drifted_columns)
    return checks / seeds, columns / (seeds * len(KINDS))


def binomial_ceiling(rate: float, trials: int) -> float:
    """An observed rate above this is not chance at the true ``rate`` (4 standard errors)."""
    return rate + 4 * math.sqrt(rate * (1 - rate) / trials)


def test_fresh_samples_rarely_alarm_and_the_false_alarm_rate_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    params = MonitorParams()
    check_rate, column_rate = alarm_rates(0.0, params)
    with capsys.disabled():
        print(f"\nfalse alarms over {SEEDS} seeds: checks {check_rate:.3f}, column tests {column_rate:.3f}")
    # Each column test errs at its p-value threshold; a check needs half the columns to err together, which
    # (the columns being correlated through the class mix) happens less often than one test errs alone.
    assert column_rate <= binomial_ceiling(params.numeric.threshold, SEEDS * len(KINDS))
    assert check_rate <= params.numeric.threshold


@pytest.mark.parametrize(
    ("numeric", "categorical"),
    [
        (NumericDrift(), CategoricalDrift()),
        (NumericDrift(test="wasserstein", threshold=0.2), CategoricalDrift(test="psi", threshold=0.1)),
    ],
)
def test_shifted_inputs_are_drift_every_time(numeric: NumericDrift, categorical: CategoricalDrift) -> None:
    params = MonitorParams(numeric=numeric, categorical=categorical)
    check_rate, column_rate = alarm_rates(0.5, params, seeds=50)
    assert check_rate == 1.0
    assert column_rate >= 0.8  # every input moved half a standard deviation; the prediction follows


def test_the_distance_tests_stay_quiet_on_fresh_samples() -> None:
    # A distance's noise shrinks with the sample: 0.1 standard deviations is noise for a 120-row reference.
    params = MonitorParams(
        numeric=NumericDrift(test="wasserstein", threshold=0.2), categorical=CategoricalDrift(test="psi", threshold=0.1)
    )
    check_rate, _ = alarm_rates(0.0, params, seeds=100)
    assert check_rate <= 0.05


def test_a_category_never_seen_in_training_is_drift() -> None:
    reference = pd.Series(["a", "b"] * 50)
    current = pd.Series(["a", "b"] * 49 + ["c", "c"])
    assert categorical_score(reference, current, "chisquare") == 0.0
    result = column_drift("colour", "categorical", reference, current, CategoricalDrift())
    assert result.drifted


def test_chisquare_is_the_two_sample_test_of_the_counts() -> None:
    reference = pd.Series(["a"] * 60 + ["b"] * 40)
    current = pd.Series(["a"] * 20 + ["b"] * 30)
    # 2x2 table [[60, 40], [20, 30]]: expected counts 53.33/46.67 and 26.67/23.33, statistic 5.357 on 1 df.
    assert categorical_score(reference, current, "chisquare") == pytest.approx(0.02064, abs=1e-4)


def test_missing_values_are_left_out_and_an_emptied_column_is_drift() -> None:
    reference = pd.Series([1.0, 2.0, 3.0, np.nan] * 30)
    assert not column_drift("x", "numeric", reference, pd.Series([1.0, 2.0, 3.0, None] * 30), NumericDrift()).drifted
    emptied = column_drift("x", "numeric", reference, pd.Series([np.nan] * 50), NumericDrift())
    assert emptied.drifted
    assert emptied.note == "no values in the recent rows"


def test_the_summary_is_json_with_every_column_and_the_verdict() -> None:
    import json

    rng = np.random.default_rng(0)
    summary = compare(iris_like(rng, 120), iris_like(rng, 300, 1.0), KINDS, MonitorParams())
    data = json.loads(json.dumps(summary.to_json()))
    assert data["drifted"] is True
    assert [c["column"] for c in data["columns"]] == list(KINDS)
    assert data["drifted_share"] == len(data["drifted_columns"]) / len(KINDS)
    assert {"score", "threshold", "test", "kind", "reference_rows", "current_rows"} <= set(data["columns"][0])


def test_served_rows_become_typed_columns_with_the_prediction() -> None:
    rows = [
        {"inputs": {"size": 1.5, "colour": "red"}, "output": {"label": "big", "class_id": 1}},
        {"inputs": {"size": None, "colour": None}, "output": {"label": "small", "class_id": 0}},
    ]
    frame = served_frame(
        rows, {"size": "numeric", "colour": "categorical", PREDICTION: "categorical"}, "classification"
    )
    assert frame["size"].dtype == "float64"
    assert math.isnan(frame["size"][1])
    assert list(frame[PREDICTION]) == ["big", "small"]
    regression = served_frame(
        [{"inputs": {"x": 2}, "output": {"value": 3.5}}], {"x": "numeric", PREDICTION: "numeric"}, "regression"
    )
    assert regression[PREDICTION].tolist() == [3.5]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"numeric": {"test": "kss"}}, "monitor.numeric.test"),
        ({"categorical": {"test": "chisquare", "threshold": 2}}, "p-value"),
        ({"drift_share": 0}, "monitor.drift_share"),
        ({"retrain": "always"}, "monitor.retrain"),
        ({"windw": 10}, "monitor.windw"),
    ],
)
def test_a_bad_monitor_section_is_a_clear_config_error(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_params({"monitor": section})
