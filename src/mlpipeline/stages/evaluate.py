"""Evaluate: score the model train wrote on the test set; write metrics and plots; log them to train's run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipeline.core.columns import snake_case
from mlpipeline.core.metrics import classification_metrics, confusion, per_class_report
from mlpipeline.core.split import features_and_target, labels_of
from mlpipeline.errors import MlpipelineError
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import atomic_path, md5, read_csv, read_json, write_csv, write_json
from mlpipeline.paths import Paths
from mlpipeline.settings import EvaluateParams, Params, env_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateResult:
    metrics: dict[str, float]
    run_id: str
    version: str


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


def run(params: EvaluateParams, paths: Paths) -> EvaluateResult:
    """Score ``models/model`` on the test split, write the outputs, log them to the run that trained it."""
    import mlflow

    settings = env_settings()
    tracking.configure()  # first: a tracking server that is down fails the stage before any work
    meta = read_json(paths.model_meta, "train")
    if md5(paths.model_dir / modeldir.MODEL_FILE) != meta["model_md5"]:
        raise MlpipelineError(
            f"{paths.model_dir} is not the model {paths.model_meta} describes: rerun train (`dvc repro`)"
        )
    model = modeldir.load(paths.model_dir)
    df = read_csv(paths.test, "preprocess")
    X, y = features_and_target(df)
    labels = labels_of(df)
    predicted = model.predict(X)
    metrics = classification_metrics(y, predicted)
    report = per_class_report(y, predicted, labels)
    matrix = confusion(y, predicted, labels)

    run_id = tracking.find_model_run(meta["experiment"], meta["model_md5"], settings.dvc_exp_name)
    version = registry.version_of_run(meta["registered_model"], run_id)
    write_json(paths.metrics, {**metrics, "n_test_rows": len(y)})
    write_json(paths.class_report, report)
    write_json(paths.confusion, matrix)
    write_csv(paths.predictions, pd.DataFrame({"actual": y.map(labels), "predicted": pd.Series(predicted).map(labels)}))
    plot_confusion(matrix, paths.confusion_png, params.plot_dpi)

    with tracking.resume_run(run_id), tracking.translate_errors("logging evaluation"):
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        mlflow.log_metrics(
            {
                f"test_{snake_case(name)}_{k}": v
                for name, row in report.items()
                for k, v in row.items()
                if k != "support"
            }
        )
        for path in (paths.metrics, paths.class_report, paths.confusion, paths.confusion_png):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    registry.tag_version(meta["registered_model"], version, {registry.EVALUATED: "true"})
    logger.info(
        "test accuracy %.3f, f1_macro %.3f for %s v%s; metrics in %s",
        metrics["accuracy"],
        metrics["f1_macro"],
        meta["registered_model"],
        version,
        paths.metrics,
    )
    return EvaluateResult(metrics=metrics, run_id=run_id, version=version)


def main(params: Params, paths: Paths) -> EvaluateResult:
    """The DVC stage."""
    return run(params.evaluate, paths)
