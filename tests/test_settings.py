from pathlib import Path
from typing import Any

import pytest
import yaml

from mlpipeline.errors import ConfigError
from mlpipeline.settings import Params, env_settings, load_params, parse_params

REPO = Path(__file__).resolve().parents[1]


def test_committed_params_equal_embedded_defaults() -> None:
    assert load_params(REPO / "params.yaml") == Params()


def test_a_missing_params_file_is_an_error_never_the_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent.yaml not found: .*--params"):
        load_params(tmp_path / "absent.yaml")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_an_empty_params_file_is_an_error(tmp_path: Path, text: str) -> None:
    empty = tmp_path / "params.yaml"
    empty.write_text(text)
    with pytest.raises(ConfigError, match="is empty"):
        load_params(empty)


def test_a_duplicate_key_names_its_line_and_column(tmp_path: Path) -> None:
    doubled = tmp_path / "params.yaml"
    doubled.write_text("train:\n  seed: 1\n  n_estimators: 5\n  seed: 2\n")
    with pytest.raises(ConfigError, match=r"params.yaml:4:3: duplicate key 'seed' \(first on line 2\)"):
        load_params(doubled)
    sections = tmp_path / "sections.yaml"
    sections.write_text("train:\n  seed: 1\ntrain:\n  seed: 2\n")
    with pytest.raises(ConfigError, match=r"sections.yaml:3:1: duplicate key 'train'"):
        load_params(sections)


def test_a_syntax_error_names_its_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  seed: 1\n   n_estimators: 5\n")
    with pytest.raises(ConfigError, match=r"params.yaml:3:\d+: YAML syntax error") as caught:
        load_params(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"train": {"n_estimator": 10}}, "unknown key 'train.n_estimator'"),
        ({"trian": {}}, "unknown key 'trian'"),
        ({"train": {"n_estimators": "many"}}, "'train.n_estimators'"),
        ({"train": {"n_estimators": 1.5}}, "'train.n_estimators'"),
        (
            {"train": {"model": "xgboost"}},
            "'train.model': input should be 'random_forest', 'linear', 'logistic_regression' or "
            "'hist_gradient_boosting'",
        ),
        ({"preprocess": {"test_size": 1.5}}, "'preprocess.test_size': input should be less than 1"),
        ({"validate": {"min_rows_per_class": 0}}, "'validate.min_rows_per_class'"),
        ({"ingest": {"name": "../escape"}}, "'ingest.name'"),
        ({"ingest": {"source": "synthetic:0"}}, "use synthetic:<rows>, a whole number of rows from 1 to"),
        ({"ingest": {"source": "synthetic:lots"}}, "'ingest.source'"),
        ({"ingest": {"source": "synthetic:100_000_001"}}, "from 1 to 100_000_000"),
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
    with pytest.raises(ConfigError, match=r"params.yaml:1:\d+: YAML syntax error"):
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


def test_env_file_is_read_from_the_dvc_root_in_an_experiment_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`dvc exp run --temp` runs stages in .dvc/tmp/exps/...: the project's .env must still apply."""
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "run" / "abc"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLPIPELINE_DOCKER_NETWORK", raising=False)
    (tmp_path / ".env").write_text("MLPIPELINE_DOCKER_NETWORK=team-net\n")
    assert env_settings().mlpipeline_docker_network == "none"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert env_settings().mlpipeline_docker_network == "team-net"


def test_params_keys_dvc_interpolates_must_be_in_the_file(tmp_path: Path) -> None:
    from mlpipeline.stages.check_params import check_file

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  seed: 3\n")  # valid for our defaults, but dvc.yaml needs ingest.name
    with pytest.raises(
        ConfigError, match=r"'ingest\.name', 'preprocess\.format', 'validate\.contract' must be set in the file itself"
    ):
        check_file(params, REPO / "dvc.yaml")
    params.write_text((REPO / "params.yaml").read_text())
    assert check_file(params, REPO / "dvc.yaml") == Params()


def test_each_data_set_gets_its_own_registered_model() -> None:
    params = parse_params({"ingest": {"source": "sklearn:wine", "name": "wine"}})
    assert params.model_name(params.task_hint()) == "wine-classifier"
    assert params.experiment_name() == "wine"
    diabetes = parse_params({"ingest": {"source": "sklearn:diabetes", "name": "diabetes"}})
    assert diabetes.model_name(diabetes.task_hint()) == "diabetes-regressor"
    assert diabetes.promote.metric_for("regression") == "rmse"
    pinned = parse_params({"train": {"registered_model": "shared"}})
    assert pinned.model_name("regression") == "shared"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ingest": {"source": "sklearn:diabetes", "task": "classification"}}, "is a regression data set"),
        ({"ingest": {"source": "synthetic:1000", "task": "regression"}}, "is a classification data set"),
        (
            {
                "ingest": {"task": "regression", "source": "data/sources/x.csv"},
                "promote": {"compare_metric": "f1_macro"},
            },
            "'f1_macro' does not apply to a regression task",
        ),
    ],
)
def test_rules_across_sections_name_the_keys(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_params(data)
