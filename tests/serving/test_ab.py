"""A/B and shadow serving: who answers, sticky keys, the split changed while serving, the challenger refused."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlpipeline.errors import ConfigError
from mlpipeline.io import registry
from mlpipeline.monitoring.predictions import read_log
from mlpipeline.serving.app import create_app
from mlpipeline.serving.model import LoadedModel, ModelHolder
from mlpipeline.serving.routing import bucket
from mlpipeline.settings import EnvSettings, env_settings
from tests.serving.conftest import NAME, Registry
from tests.serving.test_metrics import scrape

pytestmark = pytest.mark.usefixtures("tmp_cwd")
JSON = {"content-type": "application/json"}


def settings(**values: Any) -> EnvSettings:
    return EnvSettings(**{"serve_poll_seconds": 0, "prediction_log_dir": "off", **values})


def predict(client: TestClient, rows: list, key: str | None = None) -> Any:
    headers = {**JSON, "X-Request-Key": key} if key else JSON
    return client.post("/predict", content=json.dumps({"rows": rows}), headers=headers)


def test_off_by_default_the_champion_answers_everything_with_a_request_id(
    store: Registry, challenger: str, rows: list
) -> None:
    client = TestClient(create_app(store.holder(), settings()))
    answers = [predict(client, rows[:2]) for _ in range(30)]
    assert {a.json()["version"] for a in answers} == {"1"}
    ids = [a.json()["request_id"] for a in answers]
    assert ids == [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 30
    status = client.get("/ab").json()
    assert (status["mode"], status["effective"], status["challenger"]) == ("off", "champion only", None)
    assert "mlpipeline_ab_prediction_seconds_count" not in scrape(client)  # nothing extra on the request path


def test_the_same_key_meets_the_same_version_every_time(store: Registry, challenger: str, rows: list) -> None:
    client = TestClient(create_app(store.holder(), settings(serve_ab_mode="ab", serve_ab_share=0.5)))
    assert client.get("/ab").json()["challenger"] == challenger
    seen: dict[str, set[str]] = {}
    for n in range(40):
        key = f"user-{n}"
        for _ in range(3):
            seen.setdefault(key, set()).add(predict(client, rows[:1], key).json()["version"])
    assert all(len(versions) == 1 for versions in seen.values()), "a key met two versions"
    expected = {key: challenger if bucket(key) < 0.5 else "1" for key in seen}
    assert {key: versions.pop() for key, versions in seen.items()} == expected
    assert set(expected.values()) == {"1", challenger}
    requests = scrape(client)["mlpipeline_requests_total"]
    by_version = {dict(labels)["version"]: v for labels, v in requests.items() if dict(labels)["route"] == "/predict"}
    assert by_version[challenger] == 3 * sum(v == challenger for v in expected.values())  # who answered, counted


def test_the_challenger_answers_with_its_own_model(store: Registry, challenger: str, rows: list, features) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(store.holder(), settings(serve_ab_mode="ab", serve_ab_share=1.0)))
    body = predict(client, rows).json()
    assert body["version"] == challenger
    names = {0: "setosa", 1: "versicolor", 2: "virginica"}
    assert [p["label"] for p in body["predictions"]] == [names[c] for c in store.models[challenger].predict(features)]


def test_shadow_the_champion_answers_and_the_challenger_is_logged_beside_it(
    store: Registry, challenger: str, rows: list, tmp_path: Path
) -> None:
    app = create_app(
        store.holder(), settings(serve_ab_mode="shadow", serve_ab_share=1.0, prediction_log_dir=str(tmp_path / "log"))
    )
    with TestClient(app) as client:  # leaving the block shuts down: shadow work and the log are written out
        answers = [predict(client, rows[:3]) for _ in range(10)]
    assert {a.json()["version"] for a in answers} == {"1"}
    logged = read_log(tmp_path / "log")
    champion = [r for r in logged if r["role"] == "champion"]
    shadow = [r for r in logged if r["role"] == "shadow"]
    assert len(champion) == len(shadow) == 30
    assert {r["version"] for r in shadow} == {challenger}
    assert sorted((r["request"], r["row"]) for r in shadow) == sorted((r["request"], r["row"]) for r in champion)
    assert {r["request"] for r in champion} == {a.headers["x-request-id"] for a in answers}
    samples = scrape(client)
    assert samples["mlpipeline_shadow_requests_total"][(("outcome", "scored"),)] == 10
    agreement = samples["mlpipeline_shadow_rows_total"]
    assert sum(v for labels, v in agreement.items() if dict(labels)["version"] == challenger) == 30
    latency = samples["mlpipeline_ab_prediction_seconds_count"]
    assert latency[(("role", "shadow"), ("version", challenger))] == 10
    assert latency[(("role", "champion"), ("version", "1"))] == 10


class Stuck:
    """A challenger's predictor that waits until released: a challenger far slower than the champion."""

    def __init__(self, inner: Any, release: threading.Event) -> None:
        self.inner, self.release = inner, release
        self.classes_ = inner.classes_
        self.takes_array = getattr(inner, "takes_array", False)

    def predict_proba(self, rows: Any) -> Any:
        self.release.wait(30)
        return self.inner.predict_proba(rows)


def holder_of(store: Registry, change: Any) -> ModelHolder:
    """A challenger holder following the real alias, each loaded version changed by ``change``."""
    champion = store.holder()

    def load(version: str) -> LoadedModel:
        return change(champion.load(version))

    return ModelHolder(
        load,
        lambda: registry.alias_version(NAME, "challenger"),
        None,
        alias="challenger",
        required=False,
        shape=champion.shape,
    )


def test_a_slow_challenger_never_delays_an_answer_and_overload_is_dropped_and_counted(
    store: Registry, challenger: str, rows: list
) -> None:
    release = threading.Event()
    slow = holder_of(store, lambda m: dataclasses.replace(m, predictor=Stuck(m.predictor, release)))
    app = create_app(
        store.holder(), settings(serve_ab_mode="shadow", serve_ab_share=1.0, serve_ab_shadow_queue=2), slow
    )
    with TestClient(app) as client:
        start = time.monotonic()
        answers = [predict(client, rows[:1]) for _ in range(20)]  # the challenger is stuck on its first request
        assert time.monotonic() - start < 10, "an answer waited for the challenger (stuck for 30 s)"
        assert all(a.status_code == 200 and a.json()["version"] == "1" for a in answers)
        dropped = client.get("/ab").json()["shadow"]["dropped"]
        assert dropped >= 20 - 1 - 2  # at most one being scored and two queued: the rest dropped
        release.set()
    counts = scrape(client)["mlpipeline_shadow_requests_total"]
    assert counts[(("outcome", "dropped"),)] == dropped
    assert counts[(("outcome", "scored"),)] == 20 - dropped  # every request shadowed or counted as dropped


def test_a_challenger_with_other_inputs_is_refused_and_the_champion_serves_alone(
    store: Registry, challenger: str, rows: list
) -> None:
    other = holder_of(store, lambda m: dataclasses.replace(m, features=("a", "b"), schema=None))
    client = TestClient(create_app(store.holder(), settings(), other))
    status = client.post("/ab", json={"mode": "ab", "share": 1.0}).json()
    assert (status["mode"], status["share"], status["challenger"]) == ("ab", 1.0, None)
    assert status["effective"] == "champion only"
    assert f"v{challenger} expects inputs" in status["challenger_error"]
    assert "a challenger must take the champion's inputs" in status["challenger_error"]
    assert {predict(client, rows[:1]).json()["version"] for _ in range(10)} == {"1"}


def test_no_challenger_alias_means_champion_only(store: Registry, rows: list) -> None:
    client = TestClient(
        create_app(store.holder(), settings(serve_ab_mode="ab", serve_ab_share=1.0, serve_ab_alias="nobody"))
    )
    status = client.get("/ab").json()
    assert (status["effective"], status["challenger"]) == ("champion only", None)
    assert status["challenger_error"] == "no 'nobody' alias in the registry: champion only"
    assert predict(client, rows[:1]).json()["version"] == "1"


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"share": 1.5}, "less than or equal to 1"),
        ({"share": -0.1}, "greater than or equal to 0"),
        ({"share": "0.5"}, "valid number"),
        ({"mode": "canary"}, "'off', 'ab' or 'shadow'"),
        ({"mode": "ab", "salt": "x"}, "Extra inputs are not permitted"),
    ],
    ids=["share-over-1", "share-negative", "share-as-text", "unknown-mode", "unknown-key"],
)
def test_a_bad_split_is_a_422_and_changes_nothing(store: Registry, change: dict, expect: str) -> None:
    client = TestClient(create_app(store.holder(), settings(serve_ab_mode="shadow", serve_ab_share=0.3)))
    answer = client.post("/ab", json=change)
    assert answer.status_code == 422
    assert expect in answer.text
    assert (client.get("/ab").json()["mode"], client.get("/ab").json()["share"]) == ("shadow", 0.3)


@pytest.mark.parametrize(
    ("name", "value", "expect"),
    [
        ("MLPIPELINE_SERVE_AB_SHARE", "1.5", "MLPIPELINE_SERVE_AB_SHARE: Input should be less than or equal to 1"),
        ("MLPIPELINE_SERVE_AB_MODE", "canary", "MLPIPELINE_SERVE_AB_MODE: Input should be 'off', 'ab' or 'shadow'"),
        ("MLPIPELINE_SERVE_AB_KEY_HEADER", "X Key", "MLPIPELINE_SERVE_AB_KEY_HEADER: String should match pattern"),
    ],
)
def test_bad_ab_settings_are_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expect: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=expect):
        env_settings()


def test_changing_the_split_needs_the_token_when_one_is_set(store: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPELINE_SERVE_TOKEN", "t0ps3cret-value")
    client = TestClient(create_app(store.holder(), EnvSettings(serve_poll_seconds=0, prediction_log_dir="off")))
    assert client.post("/ab", json={"mode": "ab"}).status_code == 401
    assert client.get("/ab").status_code == 401
    allowed = client.post("/ab", json={"mode": "ab"}, headers={"authorization": "Bearer t0ps3cret-value"})
    assert allowed.status_code == 200
    assert allowed.json()["mode"] == "ab"
