"""The drafter keeps the file's own column names for the server, never one that is another feature's name."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlpipeline.io.drafting import draft_contract


def test_source_names_are_kept_unless_another_feature_has_that_name(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    rows = "".join(f"{30 + i % 9},{i % 4},{i % 5}.5,{'ab'[i % 2]}\n" for i in range(40))
    source.write_text("Age,age,Height (m),label\n" + rows)  # Age -> age, age -> age_2
    draft_contract(source, tmp_path / "people.yaml", target="label", params_file=tmp_path / "none.yaml")
    features = yaml.safe_load((tmp_path / "people.yaml").read_text())["features"]
    assert list(features) == ["age", "age_2", "height_m"]
    assert "source_name" not in features["age_2"]  # its file name, 'age', is the name of feature 'age'
    assert features["age"]["source_name"] == "Age"
    assert features["height_m"]["source_name"] == "Height (m)"
