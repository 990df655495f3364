from pathlib import Path

import pandas as pd
import pytest

from mlpipeline.errors import DataContractError, MlpipelineError
from mlpipeline.io.files import atomic_dir, atomic_path, md5, read_csv, read_json, write_json


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
