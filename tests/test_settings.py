from pathlib import Path

import pytest
import yaml

from mlpipeline.errors import ConfigError
from mlpipeline.settings import Params, env_settings, load_params, parse_params

REPO = Path(__file__).resolve().parents[1]


def test_committed_params_equal_embedded_defaults() -> None:
    assert load_params(REPO / "params.yaml") == Params()


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_params(tmp_path / "absent.yaml") == Params()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"train": {"n_estimator": 10}}, "unknown key 'train.n_estimator'"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"train": {"n_estimators": "many"}}, "'train.n_estimators'"),
        ({"train": {"n_estimators": 1.5}}, "'train.n_estimators'"),
        ({"train": {"model": "xgboost"}}, "'train.model': input should be 'random_forest' or 'logistic_regression'"),
        ({"preprocess": {"test_size": 1.5}}, "'preprocess.test_size': input should be less than 1"),
        ({"validate": {"min_rows_per_class": 0}}, "'validate.min_rows_per_class'"),
        ({"ingest": {"name": "../escape"}}, "'ingest.name'"),
    ],
)
def test_bad_params_name_the_key(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_params(data, Path("params.yaml"))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith("params.yaml:")


def test_non_mapping_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_params(["a"])
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_params_are_frozen() -> None:
    params = Params()
    with pytest.raises(ValueError, match="frozen"):
        params.train.n_estimators = 3  # type: ignore[misc]


def test_model_params_follow_the_model() -> None:
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["train"]["model"] = "logistic_regression"
    assert set(parse_params(data).train.model_params()) == {"C", "max_iter", "seed"}


def test_env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLPIPELINE_RUNTIME", raising=False)
    assert env_settings().mlflow_tracking_uri == "sqlite:///mlflow.db"
    (tmp_path / ".env").write_text("MLFLOW_TRACKING_URI=http://127.0.0.1:1\n")
    assert env_settings().mlflow_tracking_uri == "http://127.0.0.1:1"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///other.db")
    assert env_settings().mlflow_tracking_uri == "sqlite:///other.db"
    monkeypatch.setenv("MLPIPELINE_RUNTIME", "kubernetes")
    with pytest.raises(ConfigError, match="MLPIPELINE_RUNTIME"):
        env_settings()
