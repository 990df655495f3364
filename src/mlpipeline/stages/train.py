"""Train: fit the configured model, log it to MLflow and register a new version; keep a copy under models/."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpipeline.core.metrics import classification_metrics
from mlpipeline.core.models import build_model
from mlpipeline.core.split import features_and_target, labels_of
from mlpipeline.errors import DataContractError
from mlpipeline.io import registry, tracking
from mlpipeline.io.files import read_csv, write_json
from mlpipeline.io.lineage import lineage_tags
from mlpipeline.settings import TrainParams
from mlpipeline.stages.preprocess import TEST, TRAIN

logger = logging.getLogger(__name__)

MODELS = Path("models")
MODEL_DIR = MODELS / "model"
METADATA = MODELS / "model_metadata.json"
TRAIN_METRICS = Path("metrics/train_metrics.json")


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    registered_model: str
    version: str
    model_uri: str
    model_id: str


def run(params: TrainParams, train_csv: Path = TRAIN) -> TrainResult:
    """Fit on ``train_csv``; log params, train metrics and the model to one new MLflow run; register it."""
    import mlflow

    df = read_csv(train_csv, "preprocess")
    X, y = features_and_target(df)
    model = build_model(params)
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise DataContractError(f"cannot train on {train_csv}: {exc}") from exc
    metrics = classification_metrics(y, model.predict(X))

    tracking.configure()
    tags = lineage_tags({"train": train_csv, "test": TEST})
    with (
        tracking.start_run(params.experiment, tags=tags) as active,
        tracking.translate_errors("logging the run"),
    ):
        mlflow.log_params(
            {"model": params.model, **params.model_params(), "n_train_rows": len(X), "n_features": X.shape[1]}
        )
        mlflow.log_metrics({f"train_{k}": v for k, v in metrics.items()})
        info = tracking.log_model(model, X.head(5), params.registered_model, labels_of(df))
        run_id, experiment_id = active.info.run_id, active.info.experiment_id
    version = str(info.registered_model_version)
    registry.tag_version(params.registered_model, version, tags)
    result = TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        registered_model=params.registered_model,
        version=version,
        model_uri=f"models:/{params.registered_model}/{version}",
        model_id=str(info.model_id),
    )
    tracking.copy_model(info.model_uri, MODEL_DIR)
    write_json(TRAIN_METRICS, metrics)
    write_json(METADATA, asdict(result))
    logger.info(
        "trained %s (train accuracy %.3f); registered %s in run %s",
        params.model,
        metrics["accuracy"],
        result.model_uri,
        run_id,
    )
    return result
