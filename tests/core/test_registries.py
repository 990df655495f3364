"""The estimator and feature registries: one entry each, read by settings checks and training alike."""

from __future__ import annotations

import pandas as pd
import pytest

from mlpipeline.core import estimators, features
from mlpipeline.core.estimators import ESTIMATORS, Estimator, Hyperparams, hyperparams, logged_params
from mlpipeline.core.metrics import classification_metrics
from mlpipeline.core.models import build_model
from mlpipeline.core.split import split
from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.settings import TrainParams
from tests import datasets

IRIS, IRIS_SCHEMA = datasets.iris()


def test_a_key_shared_by_estimators_has_one_type() -> None:
    """params.yaml holds one value per key: every estimator that reads it must take the same kind of value (their
    bounds and defaults may differ: each checks the value with its own)."""

    def kind(annotation: object) -> str:
        return repr(annotation).replace("typing.Optional[", "").split("[")[0].split(",")[0]

    seen: dict[str, str] = {}
    for name, estimator in ESTIMATORS.items():
        for key, field in estimator.params.model_fields.items():
            found = kind(field.annotation)
            assert seen.setdefault(key, found) == found, f"{name}.{key}: {found}, elsewhere {seen[key]}"


def test_the_chosen_estimator_reads_its_keys_and_every_key_is_checked() -> None:
    params = TrainParams.model_validate({"model": "linear", "C": 2.0, "n_estimators": 7})
    assert logged_params(params) == {"C": 2.0, "max_iter": 500, "seed": 42}
    with pytest.raises(ConfigError, match=r"unknown key 'train\.n_estimatorz'.*n_estimators"):
        hyperparams(TrainParams.model_validate({"n_estimatorz": 7}))
    # A key of another estimator is still typed: switching model later must not fail on it.
    with pytest.raises(ConfigError, match=r"'train\.n_estimators': input should be a valid integer"):
        hyperparams(TrainParams.model_validate({"model": "linear", "n_estimators": "ten"}))
    with pytest.raises(
        ConfigError, match=r"'train\.model': 'xgboost' is not a registered estimator.*core/estimators\.py"
    ):
        hyperparams(TrainParams.model_validate({"model": "xgboost"}))


def test_a_new_estimator_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    class TreeParams(Hyperparams):
        min_samples_leaf: int = 1

    def kwargs(built: estimators.Built) -> dict[str, object]:
        return {"min_samples_leaf": built.hyper.min_samples_leaf, "random_state": built.seed}

    tree = ("sklearn.tree:DecisionTreeClassifier", "sklearn.tree:DecisionTreeRegressor")
    monkeypatch.setitem(ESTIMATORS, "tree", Estimator(TreeParams, *tree, kwargs, trusted=estimators.TREES))
    params = TrainParams.model_validate({"model": "tree", "min_samples_leaf": 3, "n_estimators": 100})
    model = build_model(params, IRIS_SCHEMA)
    assert model[-1].min_samples_leaf == 3
    assert logged_params(params) == {"min_samples_leaf": 3, "seed": 42}
    assert "sklearn.tree._tree.Tree" in estimators.trusted_types()


def test_features_are_computed_inside_the_model_from_the_raw_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        features.TRANSFORMS,
        "petal_area",
        features.Transform(
            lambda rows: rows["petal_length_cm"] * rows["petal_width_cm"], ("petal_length_cm", "petal_width_cm")
        ),
    )
    params = TrainParams.model_validate({"features": ["petal_area"], "model": "linear"})
    train, test = split(IRIS, 0.2, 42, stratify=True)
    model = build_model(params, IRIS_SCHEMA)
    model.fit(IRIS_SCHEMA.model_input(train), IRIS_SCHEMA.target(train))
    raw = IRIS_SCHEMA.model_input(test)
    assert "petal_area" not in raw.columns  # the served inputs are the raw ones
    assert classification_metrics(IRIS_SCHEMA.target(test), model.predict(raw))["accuracy"] >= 0.9
    assert list(model[0].transform(raw).columns)[-1] == "petal_area"  # the model's first step computes it
    assert features.TRUSTED[0] in estimators.trusted_types()


def test_a_feature_of_a_column_the_data_lacks_or_no_transform_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        features.TRANSFORMS, "ratio", features.Transform(lambda rows: rows["a"] / rows["b"], ("a", "b"))
    )
    with pytest.raises(DataContractError, match=r"feature 'ratio' needs \['a', 'b'\], which the data does not have"):
        build_model(TrainParams.model_validate({"features": ["ratio"]}), IRIS_SCHEMA)
    with pytest.raises(ConfigError, match=r"no feature transform 'area'.*core/features\.py"):
        hyperparams(TrainParams.model_validate({"features": ["area"]}))


def test_features_with_gaps_and_categories(monkeypatch: pytest.MonkeyPatch) -> None:
    df, schema = datasets.mixed()
    monkeypatch.setitem(
        features.TRANSFORMS,
        "big",
        features.Transform(
            lambda rows: (rows["size"] > 10).map({True: "yes", False: "no"}), ("size",), "categorical", ("yes", "no")
        ),
    )
    model = build_model(TrainParams.model_validate({"features": ["big"]}), schema)
    model.fit(schema.model_input(df), schema.target(df))
    unseen = pd.DataFrame({"colour": ["purple"], "size": [float("nan")], "shape": [None]})
    assert len(model.predict(schema.model_input(unseen))) == 1
