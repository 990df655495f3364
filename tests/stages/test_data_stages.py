"""Ingest, validate and preprocess on files, as the stages run them: streaming, column-wise (polars)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlpipeline.errors import DataContractError
from mlpipeline.io.files import md5
from mlpipeline.paths import Paths
from mlpipeline.settings import IngestParams, PreprocessParams, ValidateParams
from mlpipeline.stages import ingest, preprocess, validate

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = str(REPO / "contracts" / "synthetic.yaml")
TOY = """name: toy
features:
  a: {min: 0, max: 10}
  n: {dtype: int, min: 0, max: 100}
  c: {kind: categorical, categories: [u, v], nullable: true}
labels: {0: x, 1: y}
"""


@dataclass(frozen=True)
class Files:
    """The data stages' files in one folder, and the Paths preprocess gets for them."""

    root: Path
    fmt: str = "csv"

    def __getattr__(self, name: str) -> Path:
        suffix = {"train": self.fmt, "test": self.fmt, "schema": "json", "validation": "json", "contract": "yaml"}
        return self.root / f"{name}.{suffix.get(name, 'csv')}"

    def preprocess(self) -> Paths:
        deps = {"raw": [self.raw], "data_validation": [self.validation]}
        outs = {"train": self.train, "test": self.test, "schema": self.schema}
        return Paths("preprocess", self.root / "params.yaml", deps, outs)


def paths_in(root: Path, fmt: str = "csv") -> Files:
    return Files(root, fmt)


def toy(tmp_path: Path, text: str) -> tuple[Path, ValidateParams]:
    (tmp_path / "contract.yaml").write_text(TOY)
    raw = tmp_path / "raw.csv"
    raw.write_text(text)
    return raw, ValidateParams(contract=str(tmp_path / "contract.yaml"), min_rows_per_class=1)


def check(tmp_path: Path, text: str) -> dict[tuple[str, str], Any]:
    raw, params = toy(tmp_path, text)
    with pytest.raises(DataContractError) as failed:
        validate.run(params, raw, tmp_path / "validation.json")
    report = json.loads((tmp_path / "validation.json").read_text())
    assert not report["passed"]
    assert "breaks data contract 'toy'" in str(failed.value)
    return {(v["column"], v["problem"].split(" (")[0]): v for v in report["violations"]}


def test_missing_value_tokens_and_spaces_in_a_source_are_gaps_to_validate(tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    source.write_text("a,n,c,label\n 1.5 ,3,u,x\n2,4,NA,y\n3, 5 ,n/a,y\nN/A,6,v,y\n")
    raw, params = toy(tmp_path, "")
    ingest.run(IngestParams.model_construct(source=str(source), target="label", task="classification"), raw)
    with pytest.raises(DataContractError, match=r"a: missing value \(null/NaN\) \(1 row, e.g. line 5: None\)"):
        validate.run(params, raw, tmp_path / "validation.json")  # N/A in a number: a gap (a is not nullable)
    source.write_text("a,n,c,label\n 1.5 ,3,u,x\n2,4,NA,y\n3, 5 ,n/a,y\n")
    ingest.run(IngestParams.model_construct(source=str(source), target="label", task="classification"), raw)
    report = validate.run(params, raw, tmp_path / "validation.json")
    assert report.passed, report.summary()
    assert report.rows == 3
    assert report.class_counts == {"x": 1, "y": 2}
    assert report.data_md5 == md5(raw)


def test_a_raw_file_holds_gaps_as_empty_fields_only(tmp_path: Path) -> None:
    """A raw file is ingest's output: "NA" left in it (ingest.missing without NA) is a category, not a gap."""
    found = check(tmp_path, "a,n,c,target,target_name\n1.5,3,u,0,x\n2,4,NA,1,y\n3,5,,1,y\n")
    assert found["c", "unknown category"]["examples"] == [{"line": 3, "value": "NA"}]


def test_each_kind_of_bad_value_is_named_with_its_file_line(tmp_path: Path) -> None:
    found = check(
        tmp_path,
        "a,n,c,target,target_name\n"
        "1,2,u,0,x\n"  # line 2: good
        "abc,2,u,0,x\n"  # line 3: a not a number
        "1,2.5,v,1,y\n"  # line 4: n not an integer
        "11,inf,w,1,y\n"  # line 5: a out of range, n not an integer, c unknown
        ",2,u,7,z\n",  # line 6: a missing, unknown code and name
    )
    assert found["a", "wrong type"]["examples"] == [{"line": 3, "value": "abc"}]
    assert [e["line"] for e in found["n", "wrong type"]["examples"]] == [4, 5]
    assert found["a", "missing value"]["examples"] == [{"line": 6, "value": None}]
    assert ("a", "out of range [0, 10]") not in found  # a has a wrong type: its values are not range-checked
    assert found["c", "unknown category"]["examples"] == [{"line": 5, "value": "w"}]
    assert found["target_name", "unknown label"]["examples"] == [{"line": 6, "value": "z"}]
    assert ("target", "unknown label") not in found  # ingest's codes are never checked: the names are


def test_out_of_range_is_named_with_its_line(tmp_path: Path) -> None:
    found = check(tmp_path, "a,n,c,target,target_name\n1,2,u,0,x\n11,2,u,1,y\n")
    assert found["a", "out of range [0, 10]"]["examples"] == [{"line": 3, "value": 11.0}]


def test_a_stray_label_is_the_one_row_named_and_good_rows_are_not_blamed(tmp_path: Path) -> None:
    """Ingest codes the labels it sees in order, so 'versicolour' shifts the codes of 'y' rows: those are fine."""
    source = tmp_path / "source.csv"
    source.write_text("a,n,c,label\n" + "1,2,u,x\n" * 5 + "1,2,u,versicolour\n" + "1,2,u,y\n" * 5)
    raw, params = toy(tmp_path, "")
    ingest.run(IngestParams.model_construct(source=str(source), target="label", task="classification"), raw)
    with pytest.raises(DataContractError) as failed:
        validate.run(params, raw, tmp_path / "validation.json")
    summary = str(failed.value).split(": ", 1)[1]
    assert summary.startswith("target_name: unknown label (allowed: ['x', 'y']) (1 row, e.g. line 7: 'versicolour')")
    assert summary.count("(") == 2, summary  # nothing else is blamed


def test_labels_none_of_which_the_contract_knows_are_one_line_naming_the_label_column(tmp_path: Path) -> None:
    """A file with both codes and names, ingest.target at the codes: say so, not "unknown label" 150 times."""
    source = tmp_path / "source.csv"
    source.write_text("a,n,c,target,target_name\n" + "1,2,u,0,x\n" * 3 + "1,2,v,1,y\n" * 3)
    raw, params = toy(tmp_path, "")
    ingest.run(IngestParams.model_construct(source=str(source), target="target", task="classification"), raw)
    with pytest.raises(DataContractError) as failed:
        validate.run(params, raw, tmp_path / "validation.json")
    message = str(failed.value)
    assert "none of the labels is one of contract 'toy''s (x, y): the data's are '0', '1'." in message
    assert "Point ingest.target at the column that holds those names" in message
    assert "too few rows" not in message


def test_preprocess_codes_each_label_by_the_contract_never_by_ingest(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    paths.contract.write_text(TOY)
    rows = "".join(f"{i % 10},{i},u,0,y\n" if i % 2 else f"{i % 10},{i},v,1,x\n" for i in range(40))
    paths.raw.write_text("a,n,c,target,target_name\n" + rows)  # codes the other way round from the contract
    validate.run(ValidateParams(contract=str(paths.contract), min_rows_per_class=1), paths.raw, paths.validation)
    preprocess.run(PreprocessParams(), paths.preprocess())
    parts = pd.concat([pd.read_csv(paths.train), pd.read_csv(paths.test)])
    assert dict(zip(parts["target_name"], parts["target"], strict=True)) == {"x": 0, "y": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty (not even a header row)"),
        ("a,n,c,target,target_name\n1,2,u,0,x,extra,fields\n", "is not a readable CSV"),
        (b"a,n,c,target,target_name\n1,2,\xff\xfe,0,x\n", "is not a readable CSV"),
    ],
)
def test_an_unreadable_raw_file_is_a_clear_error(tmp_path: Path, text: str | bytes, message: str) -> None:
    raw, params = toy(tmp_path, "")
    raw.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(DataContractError, match=re.escape(message)):
        validate.run(params, raw, tmp_path / "validation.json")


def test_a_header_only_file_has_no_data_rows(tmp_path: Path) -> None:
    assert check(tmp_path, "a,n,c,target,target_name\n")["<table>", "no data rows"]


def synthetic_run(tmp_path: Path, rows: int, fmt: str, **split: object) -> Files:
    paths = paths_in(tmp_path, fmt)
    ingest.run(IngestParams(source=f"synthetic:{rows}", name="synthetic"), paths.raw)
    validate.run(ValidateParams(contract=SYNTHETIC), paths.raw, paths.validation)
    preprocess.run(PreprocessParams(format=fmt, **split), paths.preprocess())  # type: ignore[arg-type]
    return paths


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_split_streams_every_row_into_exactly_one_part_in_file_order(tmp_path: Path, fmt: str) -> None:
    paths = synthetic_run(tmp_path, 20_000, fmt)
    raw = pd.read_csv(paths.raw, dtype={"colour": "string", "size": "string", "target_name": "string"})
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    train, test = read(paths.train), read(paths.test)
    assert (len(train), len(test)) == (16_000, 4_000)
    assert list(train.columns) == list(raw.columns)
    shares = test["target"].value_counts(normalize=True) - raw["target"].value_counts(normalize=True)
    assert shares.abs().max() < 0.001  # stratified
    both = pd.concat([train, test]).sort_values(["x1", "x3"]).reset_index(drop=True)
    expected = raw.sort_values(["x1", "x3"]).reset_index(drop=True)
    pd.testing.assert_series_equal(both["x2"], expected["x2"], check_dtype=False)
    assert both["size"].isna().sum() == expected["size"].isna().sum() > 0
    if fmt == "parquet":
        assert str(train["x1"].dtype) == "float64"
        assert str(train["target"].dtype) == "int64"


def test_parquet_parts_are_the_same_bytes_whatever_the_thread_count(tmp_path: Path) -> None:
    """Streaming writers must not let the number of threads shape the file: DVC would see a change."""
    hashes = []
    for threads in ("1", "2"):
        root = tmp_path / threads
        root.mkdir()
        code = (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
            "from tests.stages.test_data_stages import synthetic_run;"
            "p = synthetic_run(Path(sys.argv[1]), 70_000, 'parquet'); print(p.train)"
        )
        env = {**os.environ, "POLARS_MAX_THREADS": threads, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
        subprocess.run([sys.executable, "-c", code, str(root), str(REPO)], check=True, env=env, capture_output=True)
        hashes.append((md5(root / "train.parquet"), md5(root / "test.parquet")))
    assert hashes[0] == hashes[1]


def test_max_train_rows_trains_on_a_stratified_sample_and_keeps_the_whole_test_part(tmp_path: Path) -> None:
    full = synthetic_run(tmp_path / "full", 10_000, "csv")
    capped = synthetic_run(tmp_path / "capped", 10_000, "csv", max_train_rows=2_000)
    train, test = pd.read_csv(capped.train), pd.read_csv(capped.test)
    assert (len(train), len(test)) == (2_000, 2_000)
    assert capped.test.read_bytes() == full.test.read_bytes()  # the same held-out rows
    everything = pd.read_csv(full.train)
    assert len(train.merge(everything, how="inner")) == 2_000  # a subset of the full training part
    shares = train["target"].value_counts(normalize=True) - everything["target"].value_counts(normalize=True)
    assert shares.abs().max() < 0.001
    again = synthetic_run(tmp_path / "again", 10_000, "csv", max_train_rows=2_000)
    assert again.train.read_bytes() == capped.train.read_bytes()


def test_a_regression_target_is_split_at_random(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    ingest.run(IngestParams(source="sklearn:diabetes", name="diabetes"), paths.raw)
    paths.contract.write_text(
        "name: diabetes\ntask: regression\nstrict: false\nfeatures: {age: {}}\ntarget: {min: 0, max: 1000}\n"
    )
    validate.run(ValidateParams(contract=str(paths.contract)), paths.raw, paths.validation)
    result = preprocess.run(PreprocessParams(max_train_rows=100), paths.preprocess())
    assert (result.train_rows, result.test_rows) == (100, 89)
    assert len(pd.read_csv(paths.train)) == 100
