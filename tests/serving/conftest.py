"""A registry with a champion (a real local MLflow store), and a server over it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from mlpipeline.core.models import build_model
from mlpipeline.core.split import split
from mlpipeline.io import modeldir, registry, tracking
from mlpipeline.serving.model import ModelHolder, registry_loader
from mlpipeline.settings import TrainParams
from tests import datasets

NAME = "iris-classifier"


@dataclass
class Registry:
    uri: str
    test: pd.DataFrame
    models: dict[str, Any]

    def register(self, **params: Any) -> str:
        """Train on Iris with ``params``, log and register a new version; returns it."""
        mlflow.set_tracking_uri(self.uri)
        df, schema = datasets.iris()
        train, self.test = split(df, 0.2, 42)
        X = schema.model_input(train)
        model = build_model(TrainParams(**params), schema).fit(X, schema.target(train))
        saved = Path(tempfile.mkdtemp(prefix="serving-model-")) / "model"
        modeldir.save(model, saved, X.head(3), schema)
        with tracking.start_run("serving-tests") as run:
            version = tracking.log_model_dir(saved, NAME, run, {registry.EVALUATED: "true"})
        registry.tag_version(NAME, version, {"data.train.md5": "abc123", "git.commit": "deadbeef"})
        self.models[version] = model
        return version

    def holder(self) -> ModelHolder:
        mlflow.set_tracking_uri(self.uri)
        return ModelHolder(registry_loader(NAME), lambda: registry.alias_version(NAME, registry.CHAMPION), None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        uri = tracking.configure()
        reg = Registry(uri=uri, test=pd.DataFrame(), models={})
        version = reg.register()
        registry.promote(NAME, version, previous=None)
        yield reg


@pytest.fixture(scope="module")
def challenger(store: Registry) -> str:
    """A second version of the model with the `challenger` alias (as `dvc exp run` leaves it)."""
    version = store.register(n_estimators=5, seed=11)
    registry.set_challenger(NAME, version)
    return version


@pytest.fixture
def features(store: Registry) -> pd.DataFrame:
    return datasets.iris()[1].model_input(store.test)


def rows_of(frame: pd.DataFrame) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@pytest.fixture
def rows(features: pd.DataFrame) -> list[dict[str, float]]:
    return rows_of(features)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the project leaks into the server settings
    return tmp_path
