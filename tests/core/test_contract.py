import pandas as pd
import pytest
from pydantic import ValidationError

from mlpipeline.core.contract import Contract, check_frame, infer_contract


@pytest.fixture
def contract() -> Contract:
    return Contract.model_validate(
        {
            "name": "toy",
            "features": {"a": {"min": 0, "max": 10}, "b": {"dtype": "float"}},
            "labels": {0: "x", 1: "y"},
        }
    )


def frame(rows: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1.0 + i % 3 for i in range(rows)],
            "b": [0.5] * rows,
            "target": [i % 2 for i in range(rows)],
            "target_name": ["x" if i % 2 == 0 else "y" for i in range(rows)],
        }
    )


def test_good_data_passes(contract: Contract) -> None:
    report = check_frame(frame(), contract, min_rows_per_class=2)
    assert report.passed
    assert report.class_counts == {"x": 2, "y": 2}
    assert report.violations == []


def test_every_failing_column_is_named_with_file_lines(contract: Contract) -> None:
    df = frame(6).astype({"a": object})
    df.loc[1, "a"] = "abc"
    df.loc[2, "b"] = float("nan")
    df.loc[3, "a"] = 99.0
    df.loc[4, "target_name"] = "unicorn"
    report = check_frame(df, contract, min_rows_per_class=1)
    assert not report.passed
    found = {(v.column, v.problem.split(" (")[0].split(" [")[0]) for v in report.violations}
    assert ("a", "wrong type") in found
    assert ("b", "missing value") in found
    assert ("target_name", "unknown label") in found
    lines = {e.get("line") for v in report.violations for e in v.examples}
    assert {3, 4, 6} <= lines  # data row i is file line i + 2
    summary = report.summary()
    assert "a:" in summary
    assert "line 3: 'abc'" in summary


def test_out_of_range_value_is_reported(contract: Contract) -> None:
    df = frame()
    df.loc[0, "a"] = 11.0
    report = check_frame(df, contract, min_rows_per_class=1)
    assert [v.column for v in report.violations] == ["a"]
    assert "out of range" in report.violations[0].problem
    assert report.violations[0].examples == [{"line": 2, "value": 11.0}]


def test_missing_and_unexpected_columns(contract: Contract) -> None:
    df = frame().drop(columns=["b"]).assign(extra=1)
    problems = {(v.column, v.problem) for v in check_frame(df, contract, 1).violations}
    assert ("b", "column missing") in problems
    assert ("extra", "unexpected column") in problems


def test_zero_rows_fail(contract: Contract) -> None:
    report = check_frame(frame(0), contract, min_rows_per_class=1)
    assert not report.passed
    assert any(v.problem == "no data rows" for v in report.violations)


def test_too_few_rows_per_class(contract: Contract) -> None:
    report = check_frame(frame(4), contract, min_rows_per_class=3)
    assert not report.passed
    assert "too few rows for class 'x': 2 < min_rows_per_class 3" in report.summary()


def test_labels_are_matched_as_written_never_through_codes(contract: Contract) -> None:
    df = frame()
    df.loc[0, "target_name"] = "y"  # ingest's code 0 is 'x' elsewhere: codes are ingest's, the name is the label
    assert check_frame(df, contract, min_rows_per_class=1).passed


def test_column_problems_count_no_rows(contract: Contract) -> None:
    summary = check_frame(frame().drop(columns=["b"]), contract, min_rows_per_class=1).summary()
    assert summary == "b: column missing"


def test_contract_rejects_bad_definitions() -> None:
    with pytest.raises(ValidationError):
        Contract.model_validate({"name": "t", "features": {"a": {"min": 5, "max": 1}}, "labels": {0: "x", 1: "y"}})
    with pytest.raises(ValidationError):
        Contract.model_validate({"name": "t", "features": {"a": {}}, "labels": {0: "x", 1: "x"}})
    with pytest.raises(ValidationError):
        Contract.model_validate({"name": "t", "features": {"a": {"dtyp": "float"}}, "labels": {0: "x", 1: "y"}})


def test_inferred_contract_accepts_its_own_data() -> None:
    df = frame(10)
    drafted = infer_contract(df, "toy")
    assert drafted.labels == {0: "x", 1: "y"}
    assert drafted.features["a"].min is not None
    assert drafted.features["a"].min >= 0
    assert check_frame(df, drafted, min_rows_per_class=1).passed


def mixed_contract() -> Contract:
    return Contract.model_validate(
        {
            "name": "shop",
            "features": {
                "colour": {"kind": "categorical", "categories": ["blue", "red"]},
                "size": {"min": 0, "max": 20, "nullable": True},
                "shape": {"kind": "categorical", "categories": ["round", "square"], "nullable": True},
            },
            "labels": {0: "3", 1: "5"},
        }
    )


def shop(**changes: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
        "colour": ["red", "blue", "red", "blue"],
        "size": [1.0, None, 3.5, 4.0],
        "shape": ["round", None, "square", "round"],
        "target": [0, 1, 0, 1],
        "target_name": ["3", "5", "3", "5"],
    }
    data.update(changes)
    frame = pd.DataFrame(data)
    for column in ("colour", "shape", "target_name"):  # as validate reads them: text
        frame[column] = frame[column].astype("string")
    return frame


def test_categories_gaps_and_numeric_labels_pass() -> None:
    report = check_frame(shop(), mixed_contract(), min_rows_per_class=1)
    assert report.passed, report.summary()
    assert report.schema_ is not None
    assert report.schema_.categorical == ["colour", "shape"]


def test_an_unknown_category_and_a_gap_where_none_is_allowed_are_named() -> None:
    report = check_frame(shop(colour=["red", "purple", None, "blue"]), mixed_contract(), min_rows_per_class=1)
    assert not report.passed
    summary = report.summary()
    assert "colour: unknown category (allowed: ['blue', 'red'])" in summary
    assert "line 3: 'purple'" in summary
    assert "colour: missing value" in summary


def test_regression_contract_checks_the_target_range_and_the_layout() -> None:
    contract = Contract.model_validate(
        {"name": "r", "task": "regression", "features": {"x": {}}, "target": {"min": 0, "max": 10}}
    )
    good = pd.DataFrame({"x": [1.0, 2.0], "target": [0.5, 9.5]})
    assert check_frame(good, contract, min_rows_per_class=5).passed  # classes play no part
    bad = check_frame(pd.DataFrame({"x": [1.0], "target": [11.0]}), contract, min_rows_per_class=1)
    assert "target: out of range" in bad.summary()
    classes = check_frame(frame(), contract.model_copy(update={"features": {"a": contract.features["x"]}}), 1)
    assert "laid out for classification but contract 'r' says regression" in classes.summary()


def test_drafting_never_fails_on_data_and_the_data_passes_its_draft() -> None:
    raw = shop(size=[1.0, None, 3.5, 4.0])
    raw["note"] = pd.Series(["a", "b", "c", "d"], dtype="string")
    raw["empty"] = [None, None, None, None]
    raw["flag"] = [True, False, True, False]
    drafted = infer_contract(raw, "shop")
    assert drafted.features["colour"].categories == ["blue", "red"]
    assert drafted.features["size"].nullable
    assert drafted.features["size"].kind == "numeric"
    assert drafted.features["shape"].nullable
    assert drafted.features["shape"].kind == "categorical"
    assert drafted.ignored == {"empty": "no values: every row is a gap"}
    assert drafted.features["flag"].categories == ["False", "True"]
    assert drafted.labels == {0: "3", 1: "5"}
    checked = raw.astype({"flag": "string"})
    assert check_frame(checked, drafted, min_rows_per_class=1).passed


def test_drafting_a_regression_target_gives_its_range() -> None:
    drafted = infer_contract(pd.DataFrame({"x": ["1", "2"], "target": ["10.0", "20.0"]}), "r")
    assert drafted.task == "regression"
    assert drafted.target is not None
    assert (drafted.target.min, drafted.target.max) == (9.0, 21.0)


def test_the_draft_leaves_row_numbers_ids_and_free_text_out_and_validate_lets_them_through() -> None:
    rows = 30
    labels = ["no"] * 15 + ["yes"] * 15  # sorted by the label: a row number would predict it perfectly
    raw = pd.DataFrame(
        {
            "unnamed_0": [str(i) for i in range(1, rows + 1)],
            "seq": [str(i) for i in range(rows)],
            "name": [f"passenger {i}" for i in range(rows)],
            "age": [str(20 + i % 7) for i in range(rows)],
            "day": [f"2024-03-{1 + i % 5:02d}" for i in range(rows)],  # repeated dates: not an id, not a category
            "at": [f"{1 + i % 12}/{1 + i % 28}/2023 10:{i % 60:02d}" for i in range(rows)],
            "target": [str(int(label == "yes")) for label in labels],
            "target_name": labels,
        }
    )
    drafted = infer_contract(raw, "t")
    assert list(drafted.features) == ["age"]
    assert set(drafted.ignored) == {"unnamed_0", "seq", "name", "day", "at"}
    assert "row number" in drafted.ignored["seq"]
    assert "free text" in drafted.ignored["name"]
    assert drafted.ignored["day"].startswith("dates: as a category, a date never matches a new day")
    assert drafted.ignored["at"].startswith("dates")
    assert check_frame(raw, drafted, min_rows_per_class=1).passed
    assert list(drafted.to_schema().features) == ["age"]  # the model never sees them


def test_a_column_both_used_and_ignored_is_refused() -> None:
    with pytest.raises(ValueError, match="both features and ignored"):
        Contract.model_validate({"name": "x", "features": {"a": {}}, "labels": {0: "n", 1: "y"}, "ignored": {"a": "?"}})


def test_a_contract_of_another_data_set_says_so_in_one_short_line() -> None:
    contract = Contract.model_validate(
        {"name": "iris", "features": {f"f{i}": {} for i in range(4)}, "labels": {0: "a", 1: "b"}}
    )
    data = pd.DataFrame({f"col_{i}": [1.0, 2.0] for i in range(30)} | {"target": [0.5, 1.5]})
    report = check_frame(data, contract, min_rows_per_class=1)
    assert not report.passed
    summary = report.summary()
    assert summary.startswith("<table>: contract 'iris' is for another data set: 0 of its 4 features")
    assert "mlpipeline contract" in summary
    assert "ingest.task" not in summary  # not advice to change the task of the data
    assert len(summary) < 300
    assert report.violations[0].details["contract_features_missing"] == ["f0", "f1", "f2", "f3"]
    assert len(report.violations[0].details["data_columns"]) == 30  # the lists are in the report
