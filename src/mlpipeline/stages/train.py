"""Train: fit the configured model, write it to ``models/`` and log it to MLflow as a new registered version.

``models/model`` is a canonical MLflow model directory (the same bytes for the same data and params, on any
machine), and the registry gets exactly those bytes. Nothing per-run is written to a DVC output: the run id,
version number and times live in MLflow, which finds the run again by the model file's hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlpipeline.core.metrics import classification_metrics
from mlpipeline.core.models import build_model
from mlpipeline.core.split import features_and_target, labels_of
from mlpipeline.errors import DataContractError
from mlpipeline.faults import checkpoint
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import read_csv, write_json
from mlpipeline.io.lineage import PARAMS_ARTIFACT, lineage_tags
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, TrainParams, env_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    registered_model: str
    version: str
    model_md5: str


def run(params: TrainParams, paths: Paths) -> TrainResult:
    """Fit on the train split; write the model and its description; log params, metrics and model to a new run."""
    import mlflow

    settings = env_settings()
    tracking.configure()  # first: a tracking server that is down fails the stage before any work
    df = read_csv(paths.train, "preprocess")
    X, y = features_and_target(df)
    labels = labels_of(df)
    model = build_model(params)
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise DataContractError(f"cannot train on {paths.train}: {exc}") from exc
    metrics = classification_metrics(y, model.predict(X))
    model_md5 = modeldir.save(model, paths.model_dir, X.head(5), labels)

    tags = {**lineage_tags({"train": paths.train}, paths.params, settings), tracking.MODEL_MD5_TAG: model_md5}
    with tracking.start_run(params.experiment, tags=tags) as active, tracking.translate_errors("logging the run"):
        mlflow.log_params(
            {"model": params.model, **params.model_params(), "n_train_rows": len(X), "n_features": X.shape[1]}
        )
        mlflow.log_metrics({f"train_{k}": v for k, v in metrics.items()})
        mlflow.log_text(paths.params.read_text(encoding="utf-8"), PARAMS_ARTIFACT)  # what reproduce rebuilds with
        version = tracking.log_model_dir(
            paths.model_dir, params.registered_model, active, {**tags, registry.EVALUATED: "false"}
        )
        checkpoint("train.registered")
        run_id = active.info.run_id
    write_json(paths.train_metrics, metrics)
    write_json(
        paths.model_meta,
        {
            "experiment": params.experiment,
            "registered_model": params.registered_model,
            "model": params.model,
            "params": params.model_params(),
            "model_md5": model_md5,
            "features": [str(c) for c in X.columns],
            "labels": {str(code): name for code, name in sorted(labels.items())},
            "n_train_rows": len(X),
        },
    )
    logger.info(
        "trained %s (train accuracy %.3f); registered %s v%s in run %s",
        params.model,
        metrics["accuracy"],
        params.registered_model,
        version,
        run_id,
    )
    return TrainResult(run_id=run_id, registered_model=params.registered_model, version=version, model_md5=model_md5)


def main(params: Params, paths: Paths) -> TrainResult:
    """The DVC stage."""
    return run(params.train, paths)
