"""Any tabular data set, end to end: the bundled ones with only the source changed plus a drafted contract, and
a user's own CSV with text categories, missing values and numeric labels, from the file to a served answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import Project
from tests.integration.conftest import STAGES, client, ran, rerun
from tests.integration.services import post_json, served

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("datasets")]


def champion_of(project: Project, name: str) -> str | None:
    aliases = client(project).get_registered_model(name).aliases
    return str(aliases["champion"]) if "champion" in aliases else None


def test_every_bundled_data_set_runs_with_only_its_source_changed(project: Project) -> None:
    first = project.make("run")
    assert ran(first.stdout)[-1] == "promote"
    iris_champion = champion_of(project, "iris-classifier")
    for name, task, floor in [
        ("wine", "classification", 0.85),
        ("breast_cancer", "classification", 0.85),
        ("digits", "classification", 0.8),
        ("diabetes", "regression", 0.2),
    ]:
        project.set_param("ingest.source", f"sklearn:{name}")
        project.set_param("ingest.name", name)
        project.repro("ingest")
        project.run("mlpipeline", "contract", f"data/raw/{name}.csv", f"contracts/{name}.yaml")
        project.set_param("validate.contract", f"contracts/{name}.yaml")
        out = project.make("run")
        metrics = json.loads(project.path("metrics/metrics.json").read_text())
        headline = "accuracy" if task == "classification" else "r2"
        assert metrics[headline] >= floor, (name, metrics)
        assert re.search(rf"INFO test .*\b{headline} [0-9.]+", out.stderr + out.stdout), name  # the score is printed
        model = f"{name}-{'classifier' if task == 'classification' else 'regressor'}"
        assert champion_of(project, model) == "1", (name, out.stdout, out.stderr)  # its own registered model
        verdict = json.loads(project.path("metrics/promotion.json").read_text())
        assert verdict["model"] == model
        assert verdict["decision"] == "promoted"
    report = json.loads(project.path("metrics/report.json").read_text())
    assert report["task"] == "regression"
    assert set(report["residuals"]) >= {"mean", "q50", "max_abs"}
    assert {p.name for p in project.path("plots/evaluation").glob("*.png")} == {
        "predicted_vs_actual.png",
        "residuals.png",
    }
    assert champion_of(project, "iris-classifier") == iris_champion  # no other data set touched it

    # Forcing another data set's model into Iris's registered model: the gate refuses it with the reason.
    project.set_param("train.registered_model", "iris-classifier")
    project.repro()
    verdict = json.loads(project.path("metrics/promotion.json").read_text())
    assert verdict["model"] == "iris-classifier"
    assert verdict["decision"] == "rejected", verdict
    refused = next(check for check in verdict["checks"] if check["name"] == "input_schema")
    assert refused["status"] == "fail"
    assert "a different data set needs its own registered model" in refused["detail"]
    assert champion_of(project, "iris-classifier") == iris_champion


def shop_csv(rows: int = 240, seed: int = 7) -> str:
    """A deterministic own data set: text categories, gaps in a number and a category, numeric labels."""
    rng = np.random.default_rng(seed)
    lines = ["Colour,Size (cm),Shape,Grade"]
    for i in range(rows):
        colour = ["red", "green", "blue"][int(rng.integers(3))]
        size = float(rng.normal(10, 3))
        grade = 5 if size + (4 if colour == "red" else 0) + rng.normal(0, 0.5) > 11 else 3
        shape = "" if i % 13 == 0 else ["round", "square"][int(rng.integers(2))]
        shown = "" if i % 17 == 0 else f"{size:.2f}"
        lines.append(f"{colour},{shown},{shape},{grade}")
    return "\n".join(lines) + "\n"


def test_own_csv_with_categories_and_gaps_from_file_to_served_answer(project: Project, tmp_path: Path) -> None:
    # The README's own-data path: (1) put the file in data/sources/, (2) draft the contract and use it,
    # (3) make run, (4) serve.
    project.path("data/sources/shop.csv").write_text(shop_csv())
    project.run("mlpipeline", "contract", "data/sources/shop.csv", "contracts/shop.yaml", "--target", "Grade", "--use")
    out = project.make("run")
    assert ran(out.stdout) == STAGES
    # A data set of any name: its outputs are git-ignored already (no .gitignore changes, nothing untracked).
    outputs = ["data", ":(exclude)data/sources", "models", "metrics", "plots", "reports"]
    assert project.run("git", "status", "--porcelain", "--", *outputs).stdout == ""
    metrics = json.loads(project.path("metrics/metrics.json").read_text())
    assert metrics["accuracy"] >= 0.85, metrics
    assert champion_of(project, "shop-classifier") == "1"

    with served(project.root, project.env, tmp_path / "serve.log") as port:
        status, answer = post_json(
            port,
            "/predict",
            {
                "rows": [
                    {"colour": "red", "size_cm": 12.0, "shape": "round"},
                    {"colour": "blue", "size_cm": None, "shape": None},
                ]
            },
        )
        assert status == 200, answer
        assert answer["model"] == "shop-classifier"
        assert next(p["label"] for p in answer["predictions"]) == "5"  # class names kept: the file's own labels
        status, answer = post_json(port, "/predict", {"rows": [{"colour": "purple", "size_cm": 1.0, "shape": "round"}]})
        assert status == 422
        assert answer["detail"][0]["loc"][-1] == "colour"
        assert "'blue', 'green' or 'red'" in answer["detail"][0]["msg"]

    # The same split as Parquet files: preprocess onward reruns, the champion is re-scored on the typed test set,
    # and the scores are those of the CSV split (same rows, same values, same model).
    project.set_param("preprocess.format", "parquet")
    again = project.repro()
    assert ran(again.stdout) == rerun("preprocess", params=True)
    for part in ("train", "test"):
        assert project.path(f"data/processed/{part}.parquet").read_bytes()[:4] == b"PAR1"
    assert json.loads(project.path("metrics/metrics.json").read_text()) == metrics
    verdict = json.loads(project.path("metrics/promotion.json").read_text())
    assert verdict["decision"] == "rejected", verdict  # no better than the champion it re-scored
    assert champion_of(project, "shop-classifier") == "1"


def test_synthetic_source_of_any_size_runs_end_to_end_with_parquet_between_stages(project: Project) -> None:
    """`synthetic:<rows>`: generated, seeded, mixed numbers and categories with gaps; the README's scale path."""
    project.set_param("ingest.source", "synthetic:20000")
    project.set_param("ingest.name", "synthetic")
    project.set_param("preprocess.format", "parquet")
    project.repro("ingest")
    project.run("mlpipeline", "contract", "data/raw/synthetic.csv", "contracts/synthetic.yaml")
    project.set_param("validate.contract", "contracts/synthetic.yaml")
    out = project.make("run")
    assert ran(out.stdout) == rerun("validate", params=True)
    metrics = json.loads(project.path("metrics/metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9, metrics  # learnable, with the default model and gate
    assert metrics["n_test_rows"] == 4000
    assert champion_of(project, "synthetic-classifier") == "1"
    assert (
        project.path("data/processed/train.parquet").stat().st_size
        < project.path("data/raw/synthetic.csv").stat().st_size
    )
    raw = project.path("data/raw/synthetic.csv").read_bytes()
    project.repro("-f", "ingest")
    assert project.path("data/raw/synthetic.csv").read_bytes() == raw  # the same rows every time
