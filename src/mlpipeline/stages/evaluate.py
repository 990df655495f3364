"""Evaluate: score the model train wrote on the test set; write metrics and plots; log them to train's run.

Classes: accuracy, precision/recall/F1, a per-class report and a confusion matrix. A regression target: RMSE,
MAE, R2, the residuals' spread, and two plots (predicted against actual, residuals against predicted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipeline.core.columns import snake_case
from mlpipeline.core.metrics import confusion, per_class_report, residual_summary, task_metrics
from mlpipeline.errors import MlpipelineError
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import atomic_path, md5, read_json, read_table, write_csv, write_json
from mlpipeline.paths import Paths
from mlpipeline.settings import EvaluateParams, Params, env_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateResult:
    metrics: dict[str, float]
    run_id: str
    version: str


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int) -> None:
    """A PNG without a timestamp, so equal input gives equal bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    _pyplot().close(fig)


def plot_regression(actual: Any, predicted: Any, folder: Path, dpi: int) -> list[Path]:
    """Predicted against actual (with the diagonal) and residuals against predicted, as PNGs in ``folder``."""
    import numpy as np

    plt = _pyplot()
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(actual, predicted, s=12, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs actual (test set)")
    fig.tight_layout()
    _save(fig, folder / "predicted_vs_actual.png", dpi)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(predicted, predicted - actual, s=12, alpha=0.6)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (predicted - actual)")
    ax.set_title("Residuals (test set)")
    fig.tight_layout()
    _save(fig, folder / "residuals.png", dpi)
    return [folder / "predicted_vs_actual.png", folder / "residuals.png"]


def plot_confusion(matrix: dict[str, Any], path: Path, dpi: int) -> None:
    """Render the confusion matrix as a PNG."""
    plt = _pyplot()

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
    _save(fig, path, dpi)


def run(params: EvaluateParams, paths: Paths) -> EvaluateResult:
    """Score ``models/model`` on the test split, write the outputs, log them to the run that trained it."""
    import mlflow

    settings = env_settings()
    tracking.configure()  # first: a tracking server that is down fails the stage before any work
    model_dir, model_meta, images = paths.dep("model"), paths.dep("model_metadata"), paths.out("evaluation")
    meta = read_json(model_meta, "train")
    if md5(model_dir / modeldir.MODEL_FILE) != meta["model_md5"]:
        raise MlpipelineError(f"{model_dir} is not the model {model_meta} describes: rerun train (`dvc repro`)")
    model = modeldir.load(model_dir)
    schema = modeldir.schema_of(model_dir)
    df = read_table(paths.dep("test"), "preprocess", schema.csv_dtypes())
    y = schema.target(df)
    predicted = model.predict(schema.model_input(df))
    metrics = task_metrics(schema.task, y, predicted)
    per_class: dict[str, dict[str, float]] = {}
    images.mkdir(parents=True, exist_ok=True)
    for stale in images.glob("*.png"):  # the folder is this stage's output: only this run's plots
        stale.unlink()
    if schema.task == "classification":
        labels = schema.labels
        per_class = per_class_report(y, predicted, labels)
        matrix = confusion(y, predicted, labels)
        report: dict[str, Any] = {"task": schema.task, "per_class": per_class, "confusion_matrix": matrix}
        shown = pd.DataFrame({"actual": y.map(labels), "predicted": pd.Series(predicted).map(labels)})
        plot_confusion(matrix, images / "confusion_matrix.png", params.plot_dpi)
        headline = f"accuracy {metrics['accuracy']:.3f}, f1_macro {metrics['f1_macro']:.3f}"
    else:
        report = {"task": schema.task, "residuals": residual_summary(y, predicted)}
        shown = pd.DataFrame({"actual": y, "predicted": pd.Series(predicted).round(6)})
        plot_regression(y, predicted, images, params.plot_dpi)
        headline = f"rmse {metrics['rmse']:.4g}, mae {metrics['mae']:.4g}, r2 {metrics['r2']:.3f}"

    run_id = tracking.find_model_run(meta["experiment"], meta["model_md5"], settings.dvc_exp_name)
    version = registry.version_of_run(meta["registered_model"], run_id)
    write_json(paths.out("metrics"), {**metrics, "n_test_rows": len(y)})
    write_json(paths.out("report"), report)
    write_csv(paths.out("predictions"), shown)

    with tracking.resume_run(run_id), tracking.translate_errors("logging evaluation"):
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        mlflow.log_metrics(
            {
                f"test_{snake_case(name)}_{k}": v
                for name, row in per_class.items()
                for k, v in row.items()
                if k != "support"
            }
        )
        for path in (paths.out("metrics"), paths.out("report"), *sorted(images.glob("*.png"))):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    registry.tag_version(meta["registered_model"], version, {registry.EVALUATED: "true"})
    logger.info("test %s for %s v%s; metrics in %s", headline, meta["registered_model"], version, paths.out("metrics"))
    return EvaluateResult(metrics=metrics, run_id=run_id, version=version)


def main(params: Params, paths: Paths) -> EvaluateResult:
    """The DVC stage."""
    return run(params.evaluate, paths)
