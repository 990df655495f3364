"""Edits of params.yaml keep its comments and layout (mlpipeline contract --use, the tests' defaults)."""

from mlpipeline.adapt.paramsfile import set_params
from mlpipeline.settings import load_yaml

TEXT = """ingest:
  name: iris                # the data set
  missing: ['', '#N/A', '?']   # a quoted '#' is no comment
  list:
    - a
train:
  seed: 42
"""


def test_a_value_is_replaced_in_place_with_its_comment_in_its_column() -> None:
    edited = set_params(TEXT, {"ingest": {"name": "wine", "missing": ["", "NA"], "list": ["b"]}, "new": {"k": 1}})
    assert edited.splitlines()[1] == "  name: wine                # the data set"
    assert edited.count("missing:") == 1  # found despite the '#' inside quotes, never added twice
    assert "# a quoted '#' is no comment" in edited
    assert load_yaml(edited, "params.yaml") == {
        "ingest": {"name": "wine", "missing": ["", "NA"], "list": ["b"]},
        "train": {"seed": 42},
        "new": {"k": 1},
    }
