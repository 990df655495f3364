"""Train: fit the configured model, write it to ``models/`` and log it to MLflow as a new registered version.

``models/model`` is a canonical MLflow model directory (the same bytes for the same data and params, on any
machine), and the registry gets exactly those bytes. Nothing per-run is written to a DVC output: the run id,
version number and times live in MLflow, which finds the run again by the model file's hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlpipeline.core.metrics import task_metrics
from mlpipeline.core.models import build_model
from mlpipeline.core.schema import Schema
from mlpipeline.errors import DataContractError
from mlpipeline.faults import checkpoint
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import read_json, read_table, write_json
from mlpipeline.io.lineage import PARAMS_ARTIFACT, lineage_tags
from mlpipeline.monitoring import reference
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, env_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    registered_model: str
    version: str
    model_md5: str


def run(all_params: Params, paths: Paths) -> TrainResult:
    """Fit on the train split; write the model and its description; log params, metrics and model to a new run."""
    import mlflow

    params = all_params.train
    settings = env_settings()
    tracking.configure()  # first: a tracking server that is down fails the stage before any work
    schema = Schema.model_validate(read_json(paths.schema, "preprocess"))
    experiment, registered_model = all_params.experiment_name(), all_params.model_name(schema.task)
    df = read_table(paths.train, "preprocess", schema.csv_dtypes())
    X, y = schema.model_input(df), schema.target(df)
    model = build_model(params, schema)
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise DataContractError(f"cannot train {params.model} on {paths.train}: {exc}") from exc
    metrics = task_metrics(schema.task, y, model.predict(X))
    model_md5 = modeldir.save(model, paths.model_dir, X.head(5), schema)

    tags = {**lineage_tags({"train": paths.train}, paths.params, settings), tracking.MODEL_MD5_TAG: model_md5}
    twin = registry.twin(registered_model, experiment, model_md5, tags.get("data.train.md5"))
    if twin is not None:  # the same bytes from the same data: that version, not a new one DVC would never gate
        version, run_id = twin
        logger.info(
            "the model came out byte-identical to %s v%s (run %s, same training data): that version stands, "
            "nothing new is logged or registered",
            registered_model,
            version,
            run_id,
        )
    else:
        with tracking.start_run(experiment, tags=tags) as active, tracking.translate_errors("logging the run"):
            mlflow.log_params(
                {
                    "model": params.model,
                    "task": schema.task,
                    **params.model_params(),
                    **(params.preprocessing() if params.model != "hist_gradient_boosting" else {}),
                    "n_train_rows": len(X),
                    "n_features": X.shape[1],
                    "n_categorical": len(schema.categorical),
                }
            )
            mlflow.log_metrics({f"train_{k}": v for k, v in metrics.items()})
            mlflow.log_text(paths.params.read_text(encoding="utf-8"), PARAMS_ARTIFACT)  # what reproduce rebuilds with
            reference.log(reference.build(df, schema, model, params.seed))  # what `mlpipeline monitor` compares with
            version = tracking.log_model_dir(
                paths.model_dir, registered_model, active, {**tags, registry.EVALUATED: "false"}
            )
            checkpoint("train.registered")
            run_id = active.info.run_id
    write_json(paths.train_metrics, metrics)
    write_json(
        paths.model_meta,
        {
            "experiment": experiment,
            "registered_model": registered_model,
            "task": schema.task,
            "model": params.model,
            "params": params.model_params(),
            "model_md5": model_md5,
            "features": [str(c) for c in X.columns],
            "labels": {str(code): name for code, name in sorted(schema.labels.items())},
            "n_train_rows": len(X),
        },
    )
    headline = "accuracy" if schema.task == "classification" else "r2"
    logger.info(
        "trained %s for %s (train %s %.3f); registered %s v%s in run %s",
        params.model,
        schema.task,
        headline,
        metrics[headline],
        registered_model,
        version,
        run_id,
    )
    return TrainResult(run_id=run_id, registered_model=registered_model, version=version, model_md5=model_md5)


def main(params: Params, paths: Paths) -> TrainResult:
    """The DVC stage."""
    return run(params, paths)
