"""The GitHub workflows users' forks run: they call the Makefile, pin every action, grant the least they need,
and the offline linters `make lint` runs would catch it if one did not."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, VENV_BIN

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def test_the_workflows_exist_and_call_the_makefile() -> None:
    names = {path.stem for path in WORKFLOWS}
    assert names == {"ci", "pipeline", "images"}
    runs = {path.stem: " ".join(step.get("run", "") for job in load(path)["jobs"].values() for step in job["steps"])
            for path in WORKFLOWS}  # fmt: skip
    assert "make lint" in runs["ci"]
    assert "make test" in runs["ci"]
    assert "make run" in runs["pipeline"]
    for summary in ("dvc metrics diff --md", "dvc params diff --md", "metrics/promotion.json", "GITHUB_STEP_SUMMARY"):
        assert summary in runs["pipeline"]
    assert "make build" in runs["images"]
    assert "pull_request" in load(REPO / ".github/workflows/ci.yml")["on"]
    assert list(load(REPO / ".github/workflows/images.yml")["on"]["push"]["branches"]) == ["main"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_and_permissions_are_least(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}  # nothing by default; each job asks for what it needs
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert granted.get("contents") == "read", name
        assert set(granted) <= {"contents", "packages"}, name
        for step in job["steps"]:
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned to a commit"
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False


def test_the_offline_linters_pass_the_workflows_and_catch_a_bad_one(tmp_path: Path) -> None:
    zizmor, schema = str(VENV_BIN / "zizmor"), str(VENV_BIN / "check-jsonschema")
    good = subprocess.run([zizmor, "--offline", str(REPO / ".github/workflows")], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(
        "on: pull_request_target\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    found = subprocess.run([zizmor, "--offline", str(bad)], capture_output=True, text=True)
    assert found.returncode != 0
    for audit in ("unpinned-uses", "template-injection"):
        assert audit in found.stdout + found.stderr
    (bad / "bad.yml").write_text("on: push\njobs:\n  x:\n    steps: []\n")  # no runs-on
    invalid = subprocess.run([schema, "--builtin-schema", "vendor.github-workflows", str(bad / "bad.yml")],
                             capture_output=True, text=True)  # fmt: skip
    assert invalid.returncode != 0
