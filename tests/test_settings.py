from pathlib import Path
from typing import Any

import pytest

from mlpipeline.core.estimators import ESTIMATORS
from mlpipeline.errors import ConfigError
from mlpipeline.settings import Params, env_settings, load_params, parse_params
from tests.conftest import REPO, default_params, write_default_params


def test_the_committed_params_are_valid_whatever_you_set_in_them() -> None:
    """Your params.yaml only has to pass check-params: any valid edit keeps `make test` green."""
    from mlpipeline.stages.check_params import check_file

    check_file(REPO / "params.yaml", REPO / "dvc.yaml")


def test_the_defaults_the_tests_run_with_are_the_code_s(tmp_path: Path) -> None:
    from mlpipeline.core.estimators import default_hyperparams
    from mlpipeline.settings import TrainParams
    from mlpipeline.stages.check_params import check_file

    checked = check_file(write_default_params(tmp_path / "params.yaml"), REPO / "dvc.yaml")
    assert checked == Params(train=TrainParams.model_validate(default_hyperparams()))


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
        ({"preprocess": {"test_sise": 0.2}}, "unknown key 'preprocess.test_sise' (did you mean 'test_size'?)"),
        ({"train": {"n_estimators": "many"}}, "'train.n_estimators'"),
        ({"train": {"n_estimators": 1.5}}, "'train.n_estimators'"),
        (
            {"train": {"model": "xgboost"}},
            f"'train.model': 'xgboost' is not a registered estimator ({', '.join(sorted(ESTIMATORS))})",
        ),
        ({"train": {"features": ["nope"]}}, "'train.features': no feature transform 'nope'"),
        ({"promote": {"floors": {"acuracy": 0.9}}}, "'promote.floors.acuracy': input should be 'accuracy'"),
        ({"promote": {"min_accuracy": 0.9}}, "promote.min_accuracy is now promote.floors: {accuracy: <value>}"),
        ({"preprocess": {"test_size": 1.5}}, "'preprocess.test_size': input should be less than 1"),
        ({"validate": {"min_rows_per_class": 0}}, "'validate.min_rows_per_class'"),
        ({"ingest": {"name": "../escape"}}, "'ingest.name'"),
        ({"ingest": {"source": "synthetic:0"}}, "use synthetic:<rows>, a whole number of rows from 1 to"),
        ({"ingest": {"source": "synthetic:lots"}}, "'ingest.source'"),
        ({"ingest": {"source": "synthetic:100_000_001"}}, "from 1 to 100_000_000"),
        ({"ingest": {"missing": [" NA"]}}, "values are trimmed before matching, so write the tokens trimmed"),
        ({"ingest": {"missing": "NA"}}, "'ingest.missing'"),
    ],
)
def test_bad_params_name_the_key(data: dict, expected: str) -> None:
    """As check-params checks them: the structure, then train against the estimator and feature registries."""
    from mlpipeline.stages.check_params import check_sections

    with pytest.raises(ConfigError) as caught:
        check_sections(parse_params(data, Path("params.yaml")))
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
        params.train.seed = 3  # type: ignore[misc]


def test_model_params_follow_the_model() -> None:
    from mlpipeline.core.estimators import logged_params

    data = default_params()
    data["train"]["model"] = "logistic_regression"  # type: ignore[index]
    assert set(logged_params(parse_params(data).train)) == {"C", "max_iter", "seed"}


def test_a_section_of_your_own_stage_is_checked_by_its_module(tmp_path: Path) -> None:
    from mlpipeline.settings import Section

    class Mine(Section):
        clip: float = 3.0

    (tmp_path / "dvc.yaml").write_text("stages:\n  mine:\n    cmd: sh bin/stage mine\n")
    params = tmp_path / "params.yaml"
    params.write_text("mine:\n  clip: 2.5\n")
    assert load_params(params).section("mine", Mine) == Mine(clip=2.5)
    params.write_text("mine:\n  clp: 2.5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'mine\.clp'"):
        load_params(params).section("mine", Mine)
    params.write_text("yours:\n  clip: 2.5\n")  # no such stage: a typo of a section
    with pytest.raises(ConfigError, match=r"unknown key 'yours' \(the sections are ingest, validate, .*your own"):
        load_params(params)


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
    write_default_params(params)
    assert check_file(params, REPO / "dvc.yaml").ingest.name == "iris"


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
