from pathlib import Path

import pandas as pd
import pytest

from mlpipeline.errors import DataContractError, MlpipelineError
from mlpipeline.io.files import (
    atomic_dir,
    atomic_path,
    md5,
    read_csv,
    read_json,
    read_table,
    write_json,
    write_table,
)


def test_atomic_path_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("y")
    assert [p.name for p in target.iterdir()] == ["new"]
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "broken").write_text("z")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_json_is_deterministic(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    write_json(tmp_path / "b.json", {"a": [1.5], "b": 1})
    assert md5(tmp_path / "a.json") == md5(tmp_path / "b.json")
    assert read_json(tmp_path / "a.json", "x") == {"a": [1.5], "b": 1}


def test_missing_inputs_name_the_stage(tmp_path: Path) -> None:
    with pytest.raises(MlpipelineError, match="run the train stage first"):
        read_json(tmp_path / "none.json", "train")
    with pytest.raises(MlpipelineError, match="run the preprocess stage first"):
        read_csv(tmp_path / "none.csv", "preprocess")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataContractError, match="is empty"):
        read_csv(tmp_path / "empty.csv", "ingest")


def test_md5_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "d.csv"
    pd.DataFrame({"a": range(1000)}).to_csv(path, index=False)
    assert md5(path) == hashlib.md5(path.read_bytes()).hexdigest()


def split_like() -> pd.DataFrame:
    """A processed split as preprocess writes it: floats with a gap, a code-like category, classes."""
    return pd.DataFrame(
        {
            "size": [1.5, float("nan"), 3.25],
            "code": pd.array(["01", None, "10"], dtype="string"),
            "target": [0, 1, 0],
            "target_name": pd.array(["007", "8", "007"], dtype="string"),
        },
        index=[2, 0, 1],  # shuffled by the split: never written
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_round_trip_in_either_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    write_table(path, split_like())
    back = read_table(path, "preprocess", {"code": "string", "target_name": "string"})
    expected = split_like().reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back["code"].tolist()[::2] == ["01", "10"]  # text stays text, leading zeros and all
    assert back["code"].isna().tolist() == [False, True, False]


def test_parquet_is_typed_compressed_and_byte_stable(tmp_path: Path) -> None:
    write_table(tmp_path / "a.parquet", split_like())
    write_table(tmp_path / "b.parquet", split_like())
    assert (tmp_path / "a.parquet").read_bytes()[:4] == b"PAR1"
    assert md5(tmp_path / "a.parquet") == md5(tmp_path / "b.parquet")  # DVC sees no change on a rerun
    back = read_table(tmp_path / "a.parquet", "preprocess")
    assert str(back["size"].dtype) == "float64"
    assert str(back["target"].dtype) == "int64"


def test_a_table_is_told_by_its_bytes_so_dvc_cache_files_read(tmp_path: Path) -> None:
    """promote and reproduce re-read a test set from the DVC cache, whose files have no suffix."""
    write_table(tmp_path / "t.parquet", split_like())
    write_table(tmp_path / "t.csv", split_like())
    (tmp_path / "cache-p").write_bytes((tmp_path / "t.parquet").read_bytes())
    (tmp_path / "cache-c").write_bytes((tmp_path / "t.csv").read_bytes())
    dtype = {"code": "string", "target_name": "string"}
    pd.testing.assert_frame_equal(
        read_table(tmp_path / "cache-p", "x", dtype), read_table(tmp_path / "cache-c", "x", dtype)
    )


def test_a_damaged_or_missing_table_names_the_stage_to_rerun(tmp_path: Path) -> None:
    broken = tmp_path / "train.parquet"
    broken.write_bytes(b"PAR1 cut short")
    with pytest.raises(
        DataContractError, match=r"train\.parquet is not a readable Parquet file .*`dvc repro -f preprocess`"
    ):
        read_table(broken, "preprocess")
    with pytest.raises(MlpipelineError, match=r"test\.parquet not found: run the preprocess stage first"):
        read_table(tmp_path / "test.parquet", "preprocess")
