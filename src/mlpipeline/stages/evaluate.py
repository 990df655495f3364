"""Evaluate: score the registered model on the test set; write metrics and plots; log them to train's run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipeline.core.metrics import classification_metrics, confusion, per_class_report
from mlpipeline.core.split import features_and_target, labels_of
from mlpipeline.io import tracking
from mlpipeline.io.files import atomic_path, read_csv, read_json, write_csv, write_json
from mlpipeline.io.sources import snake_case
from mlpipeline.settings import EvaluateParams
from mlpipeline.stages.preprocess import TEST
from mlpipeline.stages.train import METADATA

logger = logging.getLogger(__name__)

METRICS = Path("metrics/metrics.json")
CONFUSION = Path("metrics/confusion_matrix.json")
CLASS_REPORT = Path("metrics/classification_report.json")
PLOTS = Path("plots")
PREDICTIONS = PLOTS / "predictions.csv"
CONFUSION_PNG = PLOTS / "confusion_matrix.png"


@dataclass(frozen=True)
class EvaluateResult:
    metrics: dict[str, float]
    model_uri: str


def plot_confusion(matrix: dict[str, Any], path: Path, dpi: int) -> None:
    """Render the confusion matrix as a PNG (no timestamp in the file, so equal input gives equal bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values, names = matrix["matrix"], matrix["labels"]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    peak = max(max(row) for row in values) or 1
    for i, row in enumerate(values):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    ax.set_title("Confusion matrix (test set)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def run(params: EvaluateParams, test_csv: Path = TEST, metadata: Path = METADATA) -> EvaluateResult:
    """Load the version train registered, score it on ``test_csv``, write outputs, log to the same run."""
    import mlflow

    meta = read_json(metadata, "train")
    df = read_csv(test_csv, "preprocess")
    X, y = features_and_target(df)
    labels = labels_of(df)

    tracking.configure()
    model = tracking.load_model(meta["model_uri"])
    predicted = model.predict(X)
    metrics = classification_metrics(y, predicted)
    report = per_class_report(y, predicted, labels)
    matrix = confusion(y, predicted, labels)

    write_json(METRICS, {**metrics, "n_test_rows": len(y)})
    write_json(CLASS_REPORT, report)
    write_json(CONFUSION, matrix)
    write_csv(PREDICTIONS, pd.DataFrame({"actual": y.map(labels), "predicted": pd.Series(predicted).map(labels)}))
    plot_confusion(matrix, CONFUSION_PNG, params.plot_dpi)

    with tracking.resume_run(meta["run_id"]), tracking.translate_errors("logging evaluation"):
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        mlflow.log_metrics(
            {
                f"test_{snake_case(name)}_{k}": v
                for name, row in report.items()
                for k, v in row.items()
                if k != "support"
            }
        )
        for path in (METRICS, CLASS_REPORT, CONFUSION, CONFUSION_PNG):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    logger.info(
        "test accuracy %.3f, f1_macro %.3f for %s; metrics in %s",
        metrics["accuracy"],
        metrics["f1_macro"],
        meta["model_uri"],
        METRICS,
    )
    return EvaluateResult(metrics=metrics, model_uri=meta["model_uri"])
