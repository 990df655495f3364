"""Drift: are the rows the champion is asked about still like the rows it was trained on?

Each input column and the model's output are compared between the reference (the champion's own training
sample, :mod:`mlpipeline.monitoring.reference`) and the newest served rows (the prediction log) with one test per
column kind, as params.yaml's ``monitor`` section says:

- numbers: ``ks`` (two-sample Kolmogorov-Smirnov p-value; drift when below the threshold) or ``wasserstein``
  (the distance in reference standard deviations; drift when at or above it);
- categories: ``chisquare`` (goodness of fit of the current counts to the reference shares; p-value) or ``psi``
  (population stability index; drift when at or above the threshold). A category never seen in training is
  drift.

The predictions drift when at least ``drift_share`` of the columns drift. The decision is made here, with scipy,
in the project's environment; Evidently's HTML report (drawn in its own environment,
``monitoring/drift/report.py``) runs these same functions as its tests, so it shows the same verdicts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlpipeline.monitoring.reference import PREDICTION

if TYPE_CHECKING:
    import pandas as pd

    from mlpipeline.settings import DriftTest, MonitorParams

Kind = Literal["numeric", "categorical"]
P_VALUE_TESTS = ("ks", "chisquare")
PSI_FLOOR = 0.0001  # an empty bin's share, as Evidently takes it, so the index stays finite


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: its score (a p-value or a distance), the threshold, and whether it drifted."""

    column: str
    kind: Kind
    test: str
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    note: str = ""


@dataclass
class DriftSummary:
    """The verdict over all columns, JSON-ready (:meth:`to_json`)."""

    columns: list[ColumnDrift]
    drift_share: float
    reference_rows: int
    current_rows: int
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.columns) and self.share >= self.drift_share

    def to_json(self) -> dict[str, Any]:
        return {
            **self.context,
            "drifted": self.drifted,
            "drifted_share": self.share,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": [{**asdict(c), "score": _finite(c.score)} for c in self.columns],
        }


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _clean(series: pd.Series) -> pd.Series:
    import numpy as np

    return series.replace([np.inf, -np.inf], np.nan).dropna()


def numeric_score(reference: pd.Series, current: pd.Series, test: str) -> float:
    """The ``ks`` p-value or the ``wasserstein`` distance normed by the reference's standard deviation."""
    import numpy as np
    from scipy import stats

    ref, cur = reference.to_numpy(dtype="float64"), current.to_numpy(dtype="float64")
    if test == "ks":
        return float(stats.ks_2samp(ref, cur).pvalue)
    return float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))


def categorical_score(reference: pd.Series, current: pd.Series, test: str) -> float:
    """The ``chisquare`` p-value (two-sample test of homogeneity of the category counts), or the ``psi``.

    The two-sample test counts the reference's own sampling error: Evidently's ``chisquare`` takes the reference
    shares as exact and, with a training sample of a hundred rows, alarms on four fresh samples in ten of a
    three-class prediction. A category the reference never had is drift whatever its count.
    """
    import numpy as np
    from scipy import stats

    ref_counts, cur_counts = reference.astype(str).value_counts(), current.astype(str).value_counts()
    keys = sorted(set(ref_counts.index) | set(cur_counts.index))
    ref = np.array([ref_counts.get(k, 0) for k in keys], dtype="float64")
    cur = np.array([cur_counts.get(k, 0) for k in keys], dtype="float64")
    if test == "chisquare":
        if np.any((ref == 0) & (cur > 0)):  # a category the model never saw in training
            return 0.0
        if len(keys) < 2:
            return 1.0
        return float(stats.chi2_contingency(np.vstack([ref, cur]), correction=False).pvalue)
    ref_share = np.maximum(ref / ref.sum(), PSI_FLOOR)
    cur_share = np.maximum(cur / cur.sum(), PSI_FLOOR)
    return float(np.sum((ref_share - cur_share) * np.log(ref_share / cur_share)))


def column_drift(name: str, kind: Kind, reference: pd.Series, current: pd.Series, rule: DriftTest) -> ColumnDrift:
    """Test one column; missing values are left out of both sides (as Evidently does)."""
    ref, cur = _clean(reference), _clean(current)
    note = ""
    if len(ref) == 0 or len(cur) == 0:  # a column gone empty in the recent rows is drift; one never filled is not
        note = "no values in the recent rows" if len(ref) else "no values in the reference"
        score, drifted = math.nan, len(ref) > 0
    else:
        score = (numeric_score if kind == "numeric" else categorical_score)(ref, cur, rule.test)
        drifted = score < rule.threshold if rule.test in P_VALUE_TESTS else score >= rule.threshold
    return ColumnDrift(name, kind, rule.test, score, rule.threshold, bool(drifted), len(ref), len(cur), note)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, Kind], params: MonitorParams
) -> DriftSummary:
    """Test every column of ``kinds`` (inputs and the prediction) between the two frames."""
    results = [
        column_drift(
            name,
            kind,
            reference[name],
            current[name],
            params.numeric if kind == "numeric" else params.categorical,
        )
        for name, kind in kinds.items()
    ]
    return DriftSummary(results, params.drift_share, len(reference), len(current))


def served_frame(rows: list[dict[str, Any]], kinds: dict[str, Kind], task: str) -> pd.DataFrame:
    """Prediction-log rows (``{inputs, output, ...}``) as a frame: one column per input and the prediction
    (the class name, or the value for a regression), typed by ``kinds``."""
    import pandas as pd

    key = "label" if task == "classification" else "value"
    data = {name: [row["inputs"].get(name) for row in rows] for name in kinds if name != PREDICTION}
    data[PREDICTION] = [row["output"].get(key) for row in rows]
    frame = pd.DataFrame(data)
    for name, kind in kinds.items():
        frame[name] = pd.to_numeric(frame[name], errors="coerce") if kind == "numeric" else frame[name].astype(object)
    return frame
