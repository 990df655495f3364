"""The drift reference: what the champion was trained on, logged with its run so monitoring needs no DVC.

Train logs ``monitoring/reference.parquet`` to the run that registers the model: a seeded sample of at most
:data:`MAX_ROWS` training rows with each feature as the model takes it, the label (:data:`TARGET`) and the model's
own prediction for the row (:data:`PREDICTION`, a class name or a value, as the server answers). ``mlpipeline
monitor`` compares recent served rows with it. A version trained before the reference was logged is found
through its lineage instead: the ``data.train.md5`` tag names the training split in the DVC cache.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipeline.errors import MlpipelineError

if TYPE_CHECKING:
    import pandas as pd

    from mlpipeline.core.schema import Schema

ARTIFACT = "monitoring/reference.parquet"
MAX_ROWS = 10_000  # enough for the tests' power at any data size; a few hundred kB logged per run
TARGET = "__target__"
PREDICTION = "__prediction__"


def build(df: pd.DataFrame, schema: Schema, model: Any, seed: int) -> pd.DataFrame:
    """Features (as the model takes them), label and the model's prediction for a seeded sample of ``df``."""
    sample = df.sample(n=MAX_ROWS, random_state=seed).sort_index() if len(df) > MAX_ROWS else df
    frame = schema.model_input(sample)
    predicted = model.predict(frame)
    target = schema.target(sample)
    if schema.task == "classification":
        frame[TARGET] = [schema.labels.get(int(code), str(code)) for code in target]
        frame[PREDICTION] = [schema.labels.get(int(code), str(code)) for code in predicted]
    else:
        frame[TARGET] = target.to_numpy(dtype="float64")
        frame[PREDICTION] = [float(value) for value in predicted]
    return frame.reset_index(drop=True)


def log(frame: pd.DataFrame) -> None:
    """Log ``frame`` to the active MLflow run as :data:`ARTIFACT`."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="mlpipeline-reference-") as tmp:
        path = Path(tmp) / Path(ARTIFACT).name
        frame.to_parquet(path, engine="pyarrow", index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(ARTIFACT).parent))


def load(run_id: str, version_tags: dict[str, str], schema: Schema, model: Any) -> pd.DataFrame:
    """The reference of the model trained in ``run_id``: the logged artifact, else the training split its lineage
    names (from the DVC cache), with the model's predictions computed now."""
    import pandas as pd

    from mlpipeline.io import tracking

    with tempfile.TemporaryDirectory(prefix="mlpipeline-reference-") as tmp:
        path = tracking.download_run_artifact(run_id, ARTIFACT, Path(tmp))
        if path is not None:
            return pd.read_parquet(path, engine="pyarrow")
    train_md5 = version_tags.get("data.train.md5")
    if train_md5:
        from mlpipeline.io.files import read_table
        from mlpipeline.io.remote import cached_file

        cached = cached_file(train_md5)
        if cached is not None:
            return build(read_table(cached, "preprocess", schema.csv_dtypes()), schema, model, seed=0)
    raise MlpipelineError(
        f"run {run_id} logged no drift reference ({ARTIFACT}) and its training data (data.train.md5 "
        f"{train_md5 or 'not tagged'}) is not in this project's DVC cache: retrain (`make run`) to log one, "
        "or `dvc pull` the data it was trained on"
    )
