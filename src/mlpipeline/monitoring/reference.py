"""The drift reference: what the champion was trained on, logged with its run so monitoring needs no DVC.

Train logs ``monitoring/reference.parquet`` to the run that registers the model: a seeded sample of at most
:data:`MAX_ROWS` training rows with each feature as the model takes it, the label (:data:`TARGET`) and the model's
own prediction for the row (:data:`PREDICTION`, a class name or a value, as the server answers). ``mlpipeline
monitor`` compares recent served rows with it (:func:`mlpipeline.monitoring.monitor.load_reference`; this module
stays small because train imports it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
