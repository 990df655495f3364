import re
from pathlib import Path

import pandas as pd
import pytest

from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.io.sources import read_source, snake_case


def collect(
    source: str, target: str = "target", chunk_rows: int = 50_000, task: str = "auto", missing: list[str] | None = None
) -> pd.DataFrame:
    tokens = {} if missing is None else {"missing": missing}
    return pd.concat(list(read_source(source, target, task, chunk_rows, **tokens)), ignore_index=True)


def test_snake_case() -> None:
    assert snake_case("sepal length (cm)") == "sepal_length_cm"
    assert snake_case("od280/od315_of_diluted_wines") == "od280_od315_of_diluted_wines"


@pytest.mark.parametrize(("name", "rows", "classes"), [("iris", 150, 3), ("wine", 178, 3)])
def test_sklearn_sources(name: str, rows: int, classes: int) -> None:
    df = collect(f"sklearn:{name}")
    assert len(df) == rows
    assert list(df.columns[-2:]) == ["target", "target_name"]
    assert df["target"].nunique() == classes
    assert all(c == snake_case(c) for c in df.columns)


def test_unknown_sklearn_source() -> None:
    with pytest.raises(ConfigError, match="not bundled"):
        collect("sklearn:mnist")


def test_csv_streams_in_chunks_with_stable_codes(tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    path.write_text("Petal Len,species\n1.0,b\n2.0,a\n3.0,b\n4.0,c\n5.0,a\n")
    chunks = list(read_source(str(path), "species", chunk_rows=2))
    assert len(chunks) == 3
    df = pd.concat(chunks, ignore_index=True)
    assert list(df.columns) == ["petal_len", "target", "target_name"]
    assert df["target"].tolist() == [1, 0, 1, 2, 0]  # sorted labels a, b, c
    assert df["petal_len"].tolist() == ["1.0", "2.0", "3.0", "4.0", "5.0"]  # passed through as text


def test_numeric_labels_sort_numerically(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("x,y\n1,10\n2,9\n3,10\n")
    assert collect(str(path), "y")["target"].tolist() == [1, 0, 1]


def test_parquet_source(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"f": [0.5, 1.5, None], "label": ["u", "v", "u"]}).to_parquet(path)
    df = collect(str(path), "label")
    assert df["target_name"].tolist() == ["u", "v", "u"]
    assert df["f"].isna().tolist() == [False, False, True]


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.with_suffix(".txt").write_text("a"), "unsupported file type"),
        (lambda p: p.write_text("a,b\n1,2\n"), "ingest.target 'label' is not a column"),
    ],
)
def test_file_source_errors(tmp_path: Path, setup, match: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    setup(path)
    source = str(path.with_suffix(".txt")) if match == "unsupported file type" else str(path)
    with pytest.raises(ConfigError, match=match):
        collect(source, "label")


def test_diabetes_is_a_bundled_regression_source() -> None:
    df = collect("sklearn:diabetes")
    assert "target_name" not in df.columns
    assert df["target"].dtype == "float64"
    assert len(df) == 442


def test_digits_labels_are_their_numbers() -> None:
    df = collect("sklearn:digits")
    assert sorted(df["target_name"].unique()) == [str(d) for d in range(10)]
    assert (df["target"].astype(str) == df["target_name"]).all()


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (["yes", "no", "yes"], "classification"),
        (["3", "5", "7"], "classification"),  # integer codes are classes
        (["1.5", "2.25", "3"], "regression"),  # fractions are a quantity
        ([str(i) for i in range(80)], "regression"),  # more distinct integers than MAX_AUTO_CLASSES
    ],
)
def test_the_task_follows_the_labels(tmp_path: Path, labels: list[str], task: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels)))
    df = collect(str(path), "y")
    assert ("target_name" in df.columns) == (task == "classification")
    forced = collect(str(path), "y", task="classification")
    assert "target_name" in forced.columns


def test_a_regression_file_keeps_its_values_and_gaps_and_drops_unlabelled_rows_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("colour,price\nred,1.5\n,2.75\nblue,\ngreen, NA \n")
    df = collect(str(path), "price", task="regression")
    assert df["target"].tolist() == ["1.5", "2.75"]
    assert df["colour"].tolist() == ["red", ""]
    assert "dropped 2 rows" in caplog.text
    assert "'price'" in caplog.text


def test_missing_value_tokens_become_gaps_and_values_are_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    tokens = ["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?", "-", " ", "  NA  "]
    rows = [f"{token},{token},a" for token in tokens] + ["  1.5 , yes ,b", "2,no,a"]
    path.write_text("bill length (mm),flag,y\n" + "\n".join(rows) + "\n")
    df = collect(str(path), "y")
    assert df["bill_length_mm"].tolist() == [""] * len(tokens) + ["1.5", "2"]
    assert df["flag"].tolist() == [""] * len(tokens) + ["yes", "no"]
    kept = collect(str(path), "y", missing=["?"])  # ingest.missing: NA is a value here
    assert kept["flag"].tolist()[:3] == ["NA", "N/A", "NaN"]
    assert kept["flag"].tolist()[7] == ""


def test_a_label_token_is_no_class_and_names_that_collide_are_numbered(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("A b,a_b,y\n1,2,x\n3,4,NA\n5,6, z\n")
    df = collect(str(path), "y")
    assert list(df.columns) == ["a_b", "a_b_2", "target", "target_name"]
    assert df["target_name"].tolist() == ["x", "z"]
    assert df["target"].tolist() == [0, 1]


def test_synthetic_source_is_the_same_every_time_in_bounded_blocks() -> None:
    from mlpipeline.io.sources import SYNTHETIC_BLOCK
    from mlpipeline.settings import Params

    rows = SYNTHETIC_BLOCK + 7  # two blocks, the second short
    blocks = list(read_source("synthetic:" + str(rows), "target"))
    assert [len(b) for b in blocks] == [SYNTHETIC_BLOCK, 7]  # never more than a block in memory
    first, again = pd.concat(blocks, ignore_index=True), collect(f"synthetic:{rows}")
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == ["x1", "x2", "x3", "colour", "size", "target", "target_name"]
    assert first["x2"].isna().mean() == pytest.approx(0.01, abs=0.003)  # gaps in a number
    assert first["size"].isna().mean() == pytest.approx(0.02, abs=0.004)  # and in a category
    assert set(first["colour"]) == {"red", "green", "blue", "black"}
    pairs = set(zip(first["target"], first["target_name"], strict=True))
    assert pairs == {(0, "low"), (1, "mid"), (2, "high")}
    assert first["target"].value_counts(normalize=True).min() > 0.25  # no class is rare
    # A prefix of a larger data set is the smaller one: row i never depends on how many rows were asked for.
    pd.testing.assert_frame_equal(collect("synthetic:1000"), first.head(1000))
    assert Params.model_validate({"ingest": {"source": "synthetic:1_000"}}).task_hint() == "classification"


def test_synthetic_source_refuses_a_bad_row_count() -> None:
    with pytest.raises(ConfigError, match="synthetic:<rows>"):
        collect("synthetic:-5")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_file_separated_by_another_character_is_read_as_such(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(sep.join(["Petal Len", "colour", "species"]) + "\n" + sep.join(["1,5", "red", "a"]) + "\n")
    df = collect(str(path), "species")
    assert list(df.columns) == ["petal_len", "colour", "target", "target_name"]
    assert df.loc[0, "colour"] == "red"


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        (["1,2,3,x", "1,2,x", "1,2,3,y"], "line 3 ('1,2,x') has 3 fields where the header has 4"),
        (["1,2,3,x", "1,2,3,y", "1,2,3,4,y"], "line 4 ('1,2,3,4,y') has 5 fields where the header has 4"),
        (["0,1,2,3,x", "1,1,2,3,y"], "line 2 ('0,1,2,3,x') has 5 fields"),  # pandas: a silent index column
    ],
    ids=["short", "long", "every-line-longer"],
)
def test_a_ragged_line_is_named_with_its_text(tmp_path: Path, lines: list[str], named: str) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c,label\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataContractError, match=re.escape(named)):
        collect(str(path), "label")


def test_an_archive_or_old_mac_line_ends_are_named_not_a_crash(tmp_path: Path) -> None:
    """As shipped (river's segment.csv.zip), a CSV inside a zip or a gzip; and a file with lone CR line ends."""
    import gzip
    import zipfile

    text = "a,b,label\n1,2,x\n3,4,y\n"
    with zipfile.ZipFile(tmp_path / "zipped.csv", "w") as archive:
        archive.writestr("inside.csv", text)
    (tmp_path / "gzipped.csv").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "mac.csv").write_bytes(text.replace("\n", "\r").encode())
    for name, named in [("zipped", "is a zip archive (unzip it)"), ("gzipped", "is gzip-compressed (gunzip it)")]:
        with pytest.raises(DataContractError, match=re.escape(named)):
            collect(str(tmp_path / f"{name}.csv"), "label")
    with pytest.raises(DataContractError, match=r"first line does not parse .*line ends"):
        collect(str(tmp_path / "mac.csv"), "label")


def test_quoted_separators_and_line_breaks_stay_in_their_field(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('a,note,label\n1,"red, blue",x\n2,"two\nlines",y\n\n3,NA,x\n')
    df = collect(str(path), "label", chunk_rows=1)
    assert df["note"].tolist() == ["red, blue", "two\nlines", ""]  # NA: a gap (written as nothing)


def test_blank_lines_before_the_header_and_a_quoted_header_with_commas(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('\n\n"Length, cm";colour;species\n1;red;a\n2;blue;b\n')
    df = collect(str(path), "species")
    assert list(df.columns) == ["length_cm", "colour", "target", "target_name"]
    assert df["target_name"].tolist() == ["a", "b"]  # the header is not a data row
