"""Swapping models: all or nothing, the old one keeps serving when the new one cannot."""

from __future__ import annotations

import numpy as np
import pytest

from mlpipeline.errors import MlpipelineError
from mlpipeline.serving.model import LoadedModel, ModelHolder


class Constant:
    """A predictor that always answers class ``c``."""

    classes_ = np.array([0, 1])

    def __init__(self, c: int) -> None:
        self.c = c

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), 2))
        out[:, self.c] = 1.0
        return out


def fake(version: str, features: tuple[str, ...] = ("a", "b")) -> LoadedModel:
    return LoadedModel("m", version, f"run{version}", features, {0: "no", 1: "yes"}, Constant(int(version) % 2))


def test_follows_the_alias_and_answers_with_labels() -> None:
    alias = {"v": "1"}
    holder = ModelHolder(fake, lambda: alias["v"], None)
    assert holder.current is not None
    assert holder.current.predict(np.zeros((1, 2)))[0] == {
        "label": "yes",
        "class_id": 1,
        "probabilities": {"no": 0.0, "yes": 1.0},
    }
    assert holder.refresh() is False
    alias["v"] = "2"
    assert holder.refresh() is True
    assert holder.current.version == "2"
    assert holder.last_error is None


def test_a_version_that_cannot_load_leaves_the_old_one_serving() -> None:
    alias = {"v": "1"}

    def load(version: str) -> LoadedModel:
        if version == "3":
            raise MlpipelineError("cannot load model: damaged")
        return fake(version)

    holder = ModelHolder(load, lambda: alias["v"], None)
    alias["v"] = "3"
    assert holder.refresh() is False
    assert holder.current is not None
    assert holder.current.version == "1"
    assert holder.last_error == "v3 could not be loaded: cannot load model: damaged"


def test_a_version_with_other_inputs_is_refused() -> None:
    alias = {"v": "1"}
    holder = ModelHolder(lambda v: fake(v, ("a", "b") if v == "1" else ("a", "c")), lambda: alias["v"], None)
    alias["v"] = "2"
    assert holder.refresh() is False
    assert holder.current is not None
    assert holder.current.version == "1"
    assert "restart the server" in (holder.last_error or "")


def test_registry_errors_keep_serving() -> None:
    state = {"fail": False}

    def resolve() -> str:
        if state["fail"]:
            raise ConnectionError("registry down")
        return "1"

    holder = ModelHolder(fake, resolve, None)
    state["fail"] = True
    assert holder.refresh() is False
    assert "registry down" in (holder.last_error or "")


def test_pinned_version_never_moves_and_no_champion_is_a_clear_error() -> None:
    pinned = ModelHolder(fake, None, "4")
    assert pinned.refresh() is False
    assert pinned.watch(0.1) is None
    with pytest.raises(MlpipelineError, match="no 'champion' yet"):
        ModelHolder(fake, lambda: None, None)


def test_a_challenger_holder_is_empty_without_its_alias_and_follows_it() -> None:
    alias: dict[str, str | None] = {"v": None}
    shape = fake("1").request_shape()
    challenger = ModelHolder(fake, lambda: alias["v"], None, alias="challenger", required=False, shape=shape)
    assert challenger.current is None  # nothing loaded before the first refresh
    assert challenger.refresh() is False
    assert challenger.last_error == "no 'challenger' alias in the registry: champion only"
    alias["v"] = "2"
    assert challenger.refresh() is True
    assert challenger.current is not None
    assert challenger.current.version == "2"
    assert challenger.last_error is None
    alias["v"] = None  # the experiment is over: champion only again
    assert challenger.refresh() is True
    assert challenger.current is None


def test_a_challenger_with_other_inputs_is_refused_once_and_not_served() -> None:
    alias = {"v": "2"}
    loads: list[str] = []

    def load(version: str) -> LoadedModel:
        loads.append(version)
        return fake(version, ("a", "b") if version == "2" else ("a", "c"))

    shape = fake("1").request_shape()
    challenger = ModelHolder(load, lambda: alias["v"], None, alias="challenger", required=False, shape=shape)
    assert challenger.refresh() is True
    alias["v"] = "3"
    assert challenger.refresh() is True  # v2 stepped down: v3 cannot take the API's inputs
    assert challenger.current is None
    assert "v3 expects inputs" in (challenger.last_error or "")
    assert "a challenger must take the champion's inputs" in (challenger.last_error or "")
    assert challenger.refresh() is False
    assert loads == ["2", "3"]  # the refused version is not downloaded again at every poll
    assert "v3 expects inputs" in (challenger.last_error or "")
