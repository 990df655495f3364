"""The CLI: each bad input fails with one clear line and its exit code, and writes nothing it should not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlpipeline.cli import main
from mlpipeline.graph import load
from tests.conftest import REPO

GRAPH = load(REPO)

IRIS_HEADER = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species"


def iris_csv(path: Path, *, rows: list[str] | None = None, header: str = IRIS_HEADER) -> Path:
    """A CSV in the shape of Iris, 12 rows per class (of the header's columns) unless ``rows`` is given."""
    if rows is None:
        kept = [IRIS_HEADER.split(",").index(column) for column in header.split(",")]
        rows = [
            ",".join([f"5.{i}", f"3.{i}", f"1.{i}", f"0.{i}", label][k] for k in kept)
            for label in ("setosa", "versicolor", "virginica")
            for i in range(12)
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + ("\n" if rows else ""))
    return path


def use_source(workdir: Path, source: Path, target: str = "species") -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["ingest"].update(source=str(source.relative_to(workdir)), target=target)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_help_lists_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "--help")
    assert code == 0
    for stage in GRAPH.project_stages:
        assert stage in out


def test_good_csv_source_passes_ingest_and_validate(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    use_source(workdir, iris_csv(workdir / "data/sources/in.csv"))
    assert run_cli(capsys, "ingest")[0] == 0
    code, out = run_cli(capsys, "validate")
    assert code == 0, out
    assert yaml.safe_load((workdir / "reports/data_validation.json").read_text())["passed"] is True


@pytest.mark.parametrize(
    ("rows", "header", "expected"),
    [
        (None, IRIS_HEADER.replace("petal_width_cm,", ""), "petal_width_cm: column missing"),
        (
            ["abc,3.0,1.0,0.2,setosa"],
            IRIS_HEADER,
            "sepal_length_cm: wrong type (not a number) (1 row, e.g. line 38: 'abc')",
        ),
        (["5.0,,1.0,0.2,setosa", "5.0,3.0,1.0,,setosa"], IRIS_HEADER, "missing value"),
        (["5.0,3.0,1.0,0.2,unicorn"], IRIS_HEADER, "target_name: unknown label"),
        ([], IRIS_HEADER, "no data rows"),
    ],
    ids=["missing-column", "non-numeric", "nan", "unknown-label", "zero-rows"],
)
def test_bad_csv_fails_validate_with_one_clear_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], rows: list[str] | None, header: str, expected: str
) -> None:
    good = iris_csv(workdir / "good.csv").read_text().splitlines()[1:]
    bad_rows = None if rows is None else good + rows if rows else []
    use_source(workdir, iris_csv(workdir / "data/sources/in.csv", rows=bad_rows, header=header))
    assert run_cli(capsys, "ingest")[0] == 0
    code, out = run_cli(capsys, "validate")
    assert code == 3
    assert expected in out
    assert "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1
    assert not (workdir / "data/processed").exists()
    # preprocess refuses data that failed validation, so nothing downstream is overwritten.
    code, out = run_cli(capsys, "preprocess")
    assert code == 3
    assert "failed validation" in out


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("train", {"n_estimatorz": 10}, "unknown key 'train.n_estimatorz'"),
        ("train", {"n_estimators": "ten"}, "'train.n_estimators': input should be a valid integer"),
        ("train", {"model": "xgboost"}, "'train.model'"),
    ],
    ids=["misspelt-key", "wrong-type", "unknown-model"],
)
def test_bad_params_fail_before_any_work(
    workdir: Path, capsys: pytest.CaptureFixture[str], section: str, change: dict, expected: str
) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params[section].update(change)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("check-params", "train"):  # check-params runs first in every pipeline run; train checks again
        code, out = run_cli(capsys, stage)
        assert code == 2
        assert expected in out
        assert "Traceback" not in out
    assert sorted(p.name for p in workdir.iterdir()) == ["contracts", "dvc.yaml", "params.yaml"]


def test_missing_inputs_say_which_stage_to_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "validate")
    assert code == 1
    assert "run the ingest stage first" in out


def test_unreachable_tracking_server_is_a_clear_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for stage in GRAPH.needs("train")[1:]:  # what train reads, made first (check-params aside)
        assert run_cli(capsys, stage)[0] == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    code, out = run_cli(capsys, "train")
    assert code == 4
    assert "MLflow tracking server http://127.0.0.1:9 is not reachable" in out
    assert "start the team stack (`make up`)" in out  # a loopback server is the team stack's
    assert not (workdir / "models").exists()


@pytest.mark.parametrize(
    ("url", "team_stack"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:9000", True),
        ("http://minio:9000", True),  # from a compose container
        ("https://dagshub.com/alice/iris.mlflow", False),
        ("https://dagshub.com/alice/iris.s3", False),
        ("https://s3.eu-west-1.amazonaws.com", False),
        (None, False),  # AWS itself: no endpoint
    ],
)
def test_an_unreachable_service_is_blamed_on_the_team_stack_only_when_it_is_one(
    url: str | None, team_stack: bool
) -> None:
    from mlpipeline.errors import bring_up_hint

    assert ("`make up`" in bring_up_hint(url)) is team_stack


def test_contract_command_drafts_a_contract_the_data_passes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "ingest")[0] == 0
    assert run_cli(capsys, "contract", "data/raw/iris.csv", "contracts/drafted.yaml")[0] == 0
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["validate"]["contract"] = "contracts/drafted.yaml"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_cli(capsys, "validate")[0] == 0


def test_serve_without_a_champion_says_what_to_do(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "serve", "--port", "1")
    assert code == 1
    assert "no model to serve" in out
    assert "make run" in out
    assert "Traceback" not in out


GARBAGE = {
    "binary": b"\x00\xff\xfe\x00PK\x03\x04" * 50,
    "latin-1": "sepal_length_cm,species\n5.0,caf\xe9\n".encode("latin-1"),
    "header-only": b"sepal_length_cm,species\n",
    "no-label-column": b"a,b\n1,2\n",
    "ragged-rows": b"sepal_length_cm,species\n1,setosa,extra,cells\n2\n",
    "quotes": b'sepal_length_cm,species\n"1,setosa\n',
    "huge-number": b"sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n1e400,1,1,1,setosa\n",
    "empty": b"",
}


@pytest.mark.parametrize("content", GARBAGE.values(), ids=GARBAGE.keys())
def test_user_data_never_produces_an_internal_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    source = workdir / "data/sources/in.csv"
    source.parent.mkdir(parents=True)
    source.write_bytes(content)
    use_source(workdir, source)
    codes = []
    for stage in GRAPH.needs("train")[1:]:  # the data stages
        code, out = run_cli(capsys, stage)
        codes.append(code)
        assert code != 70, out
        assert "internal error" not in out
        assert "Traceback" not in out
        if code:
            break
    assert codes[-1] in (1, 2, 3)


def test_a_source_outside_data_sources_names_the_folder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iris_csv(workdir / "in.csv")
    use_source(workdir, workdir / "in.csv")
    code, out = run_cli(capsys, "check-params")
    assert code == 2
    assert "data/sources/" in out


def test_check_params_checks_an_experiment_s_overrides(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "check-params", "-S", "train.max_depth=3", "--queue", "-n", "x")[0] == 0
    code, out = run_cli(capsys, "check-params", "-S", "train.max_dept=3")
    assert code == 2
    assert "train.max_dept" in out
    code, out = run_cli(capsys, "check-params", "-S", "train.n_estimators=1,0")  # a sweep: each one checked
    assert code == 2
    assert "'train.n_estimators'" in out
    assert run_cli(capsys, "check-params", "-S", "train.n_estimators=1,5")[0] == 0
    code, out = run_cli(capsys, "check-params", "--params", "absent.yaml")
    assert code == 2
    assert "absent.yaml not found" in out


def test_exit_codes_from_commands_reach_the_shell(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(capsys, "promote", "--version", "1", "--after-experiment")
    assert code == 2
    code, _ = run_cli(capsys, "no-such-command")
    assert code == 2


SHOP_HEADER = "colour,size,shape,grade\n"
SHOP_ROWS = """red,1.5,round,3
blue,,square,5
red,2.5,,3
blue,4.0,round,5
red,3.0,square,3
blue,2.0,round,5
"""
SHOP = SHOP_HEADER + SHOP_ROWS * 4  # 12 rows per class


def test_own_data_path_drafts_points_params_and_validates(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Text categories, gaps and numeric labels: the README's own-data commands work as written."""
    source = workdir / "data/sources/shop.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(SHOP.replace("size", "Size (cm)", 1))
    before = (workdir / "params.yaml").read_text()
    code, out = run_cli(
        capsys, "contract", "data/sources/shop.csv", "contracts/shop.yaml", "--target", "grade", "--use"
    )
    assert code == 0, out
    drafted = yaml.safe_load((workdir / "contracts/shop.yaml").read_text())
    assert drafted["features"]["colour"] == {"kind": "categorical", "categories": ["blue", "red"], "nullable": False}
    assert drafted["features"]["size_cm"]["nullable"] is True
    assert drafted["features"]["size_cm"]["source_name"] == "Size (cm)"  # the server accepts both names
    assert "source_name" not in drafted["features"]["colour"]
    assert drafted["labels"] == {0: "3", 1: "5"}
    params = (workdir / "params.yaml").read_text()
    assert "source: data/sources/shop.csv" in params
    assert "contract: contracts/shop.yaml" in params
    assert params.count("#") == before.count("#")  # the file's comments are kept
    assert run_cli(capsys, "ingest")[0] == 0
    code, out = run_cli(capsys, "validate")
    assert code == 0, out

    # A category the contract does not allow: validate names the column, the line and the allowed values.
    source.write_text(SHOP.replace("size", "Size (cm)", 1).replace("blue,4.0", "purple,4.0"))
    assert run_cli(capsys, "ingest")[0] == 0
    code, out = run_cli(capsys, "validate")
    assert code == 3
    assert "colour: unknown category (allowed: ['blue', 'red'])" in out
    assert "'purple'" in out


def test_contract_from_a_file_without_a_label_column_says_to_name_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = workdir / "data/sources/shop.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(SHOP)
    code, out = run_cli(capsys, "contract", "data/sources/shop.csv", "contracts/shop.yaml")
    assert code == 2
    assert "--target" in out
    code, out = run_cli(capsys, "contract", "data/sources/shop.csv", "contracts/shop.yaml", "--target", "nope")
    assert code == 2
    assert "'nope' is not a column" in out
