"""The model a server answers with, and how it is swapped when the ``champion`` alias moves.

A new version is loaded completely (downloaded, deserialized, compiled) before a single reference is swapped,
so a request sees either the old model or the new one, never half of each. A version that fails to load, or
whose inputs differ from the served API, is refused: the old one keeps answering and ``/model`` says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpipeline.core.schema import Schema
from mlpipeline.errors import MlpipelineError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One model version, ready to predict."""

    name: str
    version: str
    run_id: str
    features: tuple[str, ...]
    labels: dict[int, str]
    predictor: Any
    lineage: dict[str, str] = field(default_factory=dict)
    schema: Schema | None = None

    @property
    def takes_array(self) -> bool:
        """True: rows go in as a float array in feature order; False: as a DataFrame (:meth:`frame`)."""
        return self.schema is None or bool(getattr(self.predictor, "takes_array", False))

    @property
    def task(self) -> str:
        return self.schema.task if self.schema is not None else "classification"

    def request_shape(self) -> dict[str, Any]:
        """What the API's request model is built from: each input's name, kind, categories and nullability."""
        if self.schema is None:
            return {"features": list(self.features)}
        return {"task": self.schema.task, "features": self.schema.model_dump(mode="json")["features"]}

    def frame(self, rows: list[dict[str, Any]]) -> Any:
        """Request rows as the model takes them (text categories, float numbers, NaN for missing)."""
        import pandas as pd

        assert self.schema is not None
        return self.schema.model_input(pd.DataFrame.from_records(rows, columns=list(self.features)))

    def predict(self, rows: Any) -> list[dict[str, Any]]:
        """For classes: label, class id and per-class probabilities for each row; for regression: the value."""
        if self.task == "regression":
            return [{"value": float(v)} for v in np.asarray(self.predictor.predict(rows), dtype=np.float64)]
        proba = np.asarray(self.predictor.predict_proba(rows))
        classes = [int(c) for c in self.predictor.classes_]
        names = [self.labels.get(c, str(c)) for c in classes]
        return [
            {"label": names[b], "class_id": classes[b], "probabilities": dict(zip(names, row, strict=True))}
            for b, row in zip(np.argmax(proba, axis=1).tolist(), proba.tolist(), strict=True)
        ]


Loader = Callable[[str], LoadedModel]


def registry_loader(name: str) -> Loader:
    """Load ``name`` at a version from the MLflow registry (call ``tracking.configure()`` first)."""

    def load(version: str) -> LoadedModel:
        from mlpipeline.core.fastforest import fast_predictor
        from mlpipeline.io import tracking
        from mlpipeline.io.lineage import LINEAGE_PREFIXES

        model, meta = tracking.load_model_with_meta(f"models:/{name}/{version}")
        try:
            import json

            inputs = json.loads(meta["signature"]["inputs"])
            features = tuple(str(column["name"]) for column in inputs)
        except (KeyError, TypeError, ValueError) as exc:
            raise MlpipelineError(f"{name} v{version} has no input signature with column names") from exc
        metadata = meta.get("metadata") or {}
        labels = {int(k): str(v) for k, v in metadata.get("labels", {}).items()}
        # A version trained before schemas were recorded has numeric inputs only: serve it as such.
        schema = Schema.model_validate(metadata) if "features" in metadata else None
        with tracking.translate_errors(f"reading {name} v{version}"):
            mv = tracking.client().get_model_version(name, version)
        lineage = {k: v for k, v in mv.tags.items() if k.startswith(LINEAGE_PREFIXES) and "reason" not in k}
        return LoadedModel(
            name=name,
            version=str(version),
            run_id=str(mv.run_id),
            features=features,
            labels=labels,
            predictor=fast_predictor(model, len(features)),
            lineage=lineage,
            schema=schema,
        )

    return load


class ModelHolder:
    """Holds the served model; follows an alias (polling or on demand) when not pinned to a version.

    The champion's holder is ``required``: it loads at once and never gives its model up. A challenger's holder
    (``required=False``) starts empty, loads on its first :meth:`refresh`, and is empty (champion only) while its
    alias is missing or points at a version that cannot be served. Every version must take the inputs ``shape``
    describes (the API's request model is built once, from the first champion), else it is refused.
    """

    def __init__(
        self,
        load: Loader,
        resolve_alias: Callable[[], str | None] | None,
        initial: str | None,
        *,
        alias: str = "champion",
        required: bool = True,
        shape: dict[str, Any] | None = None,
    ) -> None:
        self.load = load
        self.alias = alias
        self.required = required
        self._resolve = resolve_alias
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refused: str | None = None
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.last_check: float | None = None
        if not required:
            if shape is None:
                raise ValueError("an optional holder needs the request shape its versions must match")
            self.shape = shape
            return
        version = initial or (resolve_alias() if resolve_alias else None)
        if version is None:
            raise MlpipelineError(
                f"no model to serve: the registry has no '{alias}' yet. Run the pipeline (`make run`) or pass --version"
            )
        self.current = load(version)
        self.shape = shape or self.current.request_shape()

    @property
    def follows_alias(self) -> bool:
        return self._resolve is not None

    def refresh(self) -> bool:
        """Check the alias now; swap in its version if it moved. Returns True when the served model changed."""
        if self._resolve is None or (self.required and self.current is None):
            return False
        with self._lock:
            self.last_check = time.time()
            try:
                target = self._resolve()
            except Exception as exc:  # a registry hiccup must not take the server down
                self.last_error = f"cannot read the alias: {exc}"
                logger.warning("%s alias check failed: %s", self.alias, exc)
                return False
            if target is None:
                return self._alias_missing()
            if self.current is not None and target == self.current.version:
                return False
            if target == self._refused:  # its inputs will not change: do not download it again every poll
                return False
            try:
                candidate = self._load_matching(target)
            except Exception as exc:  # keep serving the old model whatever went wrong with the new one
                return self._refuse(target, exc)
            previous = self.current.version if self.current is not None else None
            self.current, self.last_error, self._refused = candidate, None, None
            logger.info("%s: now %s v%s (was %s)", self.alias, candidate.name, candidate.version, previous)
            return True

    def _load_matching(self, target: str) -> LoadedModel:
        candidate = self.load(target)
        if candidate.request_shape() != self.shape:
            self._refused = target
            what = "restart the server to serve it" if self.required else "a challenger must take the champion's inputs"
            raise MlpipelineError(
                f"v{target} expects inputs {candidate.request_shape()}, the API serves {self.shape}: {what}"
            )
        return candidate

    def _alias_missing(self) -> bool:
        """No alias: the champion keeps what it serves; a challenger steps down (champion only)."""
        if self.required:
            return False
        self.last_error = f"no '{self.alias}' alias in the registry: champion only"
        if self.current is None:
            return False
        logger.info("%s alias removed: v%s no longer served", self.alias, self.current.version)
        self.current = None
        return True

    def _refuse(self, target: str, exc: Exception) -> bool:
        self.last_error = f"v{target} could not be loaded: {exc}"
        if self.required:
            logger.error("still serving v%s: %s", self.current.version if self.current else "?", self.last_error)
            return False
        logger.error("%s: %s; champion only", self.alias, self.last_error)
        dropped, self.current = self.current is not None, None
        return dropped

    def watch(self, every_seconds: float, active: Callable[[], bool] | None = None) -> threading.Thread | None:
        """Poll the alias in a daemon thread (no thread when pinned or polling is off); skip while not ``active``."""
        if self._resolve is None or every_seconds <= 0:
            return None

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                if active is None or active():
                    self.refresh()

        thread = threading.Thread(target=loop, name=f"{self.alias}-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
