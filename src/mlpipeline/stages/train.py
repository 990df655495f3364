"""Train: fit the configured model, write it to ``models/`` and log it to MLflow as a new registered version.

``models/model`` is a canonical MLflow model directory (the same bytes for the same data and params, on any
machine), and the registry gets exactly those bytes. Nothing per-run is written to a DVC output: the run id,
version number and times live in MLflow, which finds the run again by the model file's hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipeline.core.estimators import ESTIMATORS, hyperparams, logged_params
from mlpipeline.core.metrics import task_metrics
from mlpipeline.core.models import build_model
from mlpipeline.core.schema import Schema
from mlpipeline.errors import DataContractError
from mlpipeline.faults import checkpoint
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.io.files import read_json, read_table, write_json
from mlpipeline.io.lineage import PARAMS_ARTIFACT, lineage_tags, unreproducible
from mlpipeline.monitoring import reference
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, TrainParams, env_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    registered_model: str
    version: str
    model_md5: str


def fit(params: TrainParams, schema: Schema, df: Any, where: Path) -> tuple[Any, dict[str, float]]:
    """The model of ``params`` fitted on ``df``, and its scores on the rows it was fitted on."""
    X, y = schema.model_input(df), schema.target(df)
    model = build_model(params, schema)
    try:
        model.fit(X, y)
    except ValueError as exc:
        raise DataContractError(f"cannot train {params.model} on {where}: {exc}") from exc
    return model, task_metrics(schema.task, y, model.predict(X))


def lone_features(schema: Schema, df: Any, params: TrainParams) -> dict[str, float]:
    """Each input alone, scored on held-out training rows (the gate refuses a likely leak); says which lead."""
    from mlpipeline.core.leakage import SAMPLE_ROWS, lone_scores

    classes = schema.task == "classification"
    rows = df if len(df) <= SAMPLE_ROWS else df.sample(n=SAMPLE_ROWS, random_state=params.seed)
    scores = lone_scores(schema.model_input(rows), schema.target(rows), classes, schema.categorical, params.seed)
    top = ", ".join(f"{name} {score:.3f}" for name, score in list(scores.items())[:3])
    logger.info("each input alone on held-out rows (%s): %s", "balanced accuracy" if classes else "R²", top or "-")
    return scores


def register(
    all_params: Params,
    paths: Paths,
    model: Any,
    df: Any,
    schema: Schema,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> tuple[str, str]:
    """Log a new run with the model and register it as a new version; ``(version, run id)``."""
    import mlflow

    params = all_params.train
    logged = {
        "model": params.model,
        "task": schema.task,
        **logged_params(params),
        **({} if ESTIMATORS[params.model].native else params.preprocessing()),
        **({"features": ",".join(params.features)} if params.features else {}),
        "n_train_rows": len(df),
        "n_features": len(schema.features),
        "n_categorical": len(schema.categorical),
    }
    with tracking.start_run(all_params.experiment_name(), tags=tags) as active, tracking.translate_errors("logging"):
        mlflow.log_params(logged)
        mlflow.log_metrics({f"train_{k}": v for k, v in metrics.items()})
        mlflow.log_text(paths.params.read_text(encoding="utf-8"), PARAMS_ARTIFACT)  # what reproduce rebuilds with
        reference.log(reference.build(df, schema, model, params.seed))  # what `mlpipeline monitor` compares with
        name = all_params.model_name(schema.task)
        version = tracking.log_model_dir(paths.out("model"), name, active, {**tags, registry.EVALUATED: "false"})
        checkpoint("train.registered")
        return version, active.info.run_id


def run(all_params: Params, paths: Paths) -> TrainResult:
    """Fit on the train split; write the model and its description; log params, metrics and model to a new run."""
    params = all_params.train
    settings = env_settings()
    tracking.configure()  # first: a tracking server that is down fails the stage before any work
    hyperparams(params)  # a bad key or an unknown model fails before any work, naming it
    train_file = paths.dep("train")
    schema = Schema.model_validate(read_json(paths.dep("schema"), "preprocess"))
    experiment, registered_model = all_params.experiment_name(), all_params.model_name(schema.task)
    df = read_table(train_file, "preprocess", schema.csv_dtypes())
    model, metrics = fit(params, schema, df, train_file)
    model_md5 = modeldir.save(model, paths.out("model"), schema.model_input(df.head(5)), schema)

    # Lineage: the raw data, and the test split the model is scored on, found in dvc.lock by their paths.
    test_file = paths.downstream_dep("model", "test")
    upstream = {"raw": paths.pipeline_output("raw"), **({"test": test_file} if test_file else {})}
    lineage = lineage_tags(upstream, {"train": train_file}, paths.params, settings)
    lone = registry.lone_scores_tag(lone_features(schema, df, params))
    tags = {**lineage, tracking.MODEL_MD5_TAG: model_md5, **lone}
    uncommitted = unreproducible(lineage)
    if uncommitted:
        logger.warning(
            "uncommitted changes to %s: the version trained now cannot be rebuilt from a commit (`mlpipeline "
            "reproduce` will say UNREPRODUCIBLE). Commit them first to keep every version reproducible",
            ", ".join(uncommitted[:5]) + (f" and {len(uncommitted) - 5} more" if len(uncommitted) > 5 else ""),
        )
    twin = registry.twin(registered_model, experiment, model_md5, tags.get("data.train.md5"))
    if twin is not None:  # the same bytes from the same data: that version, not a new one DVC would never gate
        version, run_id = twin
        registry.tag_version(registered_model, version, lone)  # one registered before train measured it, too
        logger.info(
            "the model came out byte-identical to %s v%s (run %s, same training data): that version stands, "
            "nothing new is logged or registered",
            registered_model,
            version,
            run_id,
        )
    else:
        version, run_id = register(all_params, paths, model, df, schema, metrics, tags)
    write_json(paths.out("train_metrics"), metrics)
    write_json(
        paths.out("model_metadata"),
        {
            "experiment": experiment,
            "registered_model": registered_model,
            "task": schema.task,
            "model": params.model,
            "params": logged_params(params),
            "model_md5": model_md5,
            "features": list(schema.features),
            "labels": {str(code): name for code, name in sorted(schema.labels.items())},
            "n_train_rows": len(df),
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
