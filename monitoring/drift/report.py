"""Draw Evidently's data drift report for `mlpipeline monitor`, in the report's own environment.

    monitoring/drift/.venv/bin/python monitoring/drift/report.py CONFIG.json

CONFIG names the two Parquet files the monitor wrote (reference and current), the numeric and categorical
columns, each kind's test and threshold, the drift share, and where to write the HTML report and the per-column
results as JSON ({"columns": {name: score}, "drifted_columns": n, "share": s}). The report's tests are the
monitor's own functions (mlpipeline.monitoring.drift, imported from the project's src/, which needs only numpy,
scipy and pandas), registered with Evidently, so the report shows exactly the verdicts the monitor decided.
Exits 0 when written, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def register(test: str, kind: str) -> str:
    """Register the monitor's ``test`` for ``kind`` columns with Evidently; return the name to ask for."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    from mlpipeline.monitoring.drift import P_VALUE_TESTS, categorical_score, numeric_score

    score = numeric_score if kind == "numeric" else categorical_score

    def decide(reference: Any, current: Any, feature_type: Any, threshold: float) -> tuple[float, bool]:
        value = score(reference, current, test)
        return value, value < threshold if test in P_VALUE_TESTS else value >= threshold

    name = f"mlpipeline_{test}"
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    label = f"{test} {'p-value' if test in P_VALUE_TESTS else 'distance'} (mlpipeline)"
    register_stattest(StatTest(name=name, display_name=label, allowed_feature_types=[column_type]), decide)
    return name


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    sys.path.insert(0, config["mlpipeline_src"])
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=config["numeric_columns"], categorical_columns=config["categorical_columns"]
    )
    columns = config["numeric_columns"] + config["categorical_columns"]
    reference = pd.read_parquet(config["reference"])[columns]
    current = pd.read_parquet(config["current"])[columns]
    preset = DataDriftPreset(
        columns=columns,
        num_method=register(config["numeric_test"], "numeric"),
        num_threshold=config["numeric_threshold"],
        cat_method=register(config["categorical_test"], "categorical"),
        cat_threshold=config["categorical_threshold"],
        drift_share=config["drift_share"],
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    snapshot.save_html(config["html"])
    scores: dict[str, float] = {}
    drifted: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = metric["config"]["type"]
        if kind.endswith(":ValueDrift"):
            scores[metric["config"]["column"]] = float(metric["value"])
        elif kind.endswith(":DriftedColumnsCount"):
            drifted = metric["value"]
    Path(config["json"]).write_text(
        json.dumps({"columns": scores, "drifted_columns": drifted.get("count"), "share": drifted.get("share")}),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        sys.exit(main(sys.argv[1]))
    except Exception as exc:  # the monitor keeps its own verdict and report; it only needs the reason
        print(f"error: Evidently could not draw the report: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
