"""dvc.yaml sees every input: each stage's code (its import closure), data paths (from mlpipeline.paths) and
environment (its own resolved packages, not all of uv.lock); every imported package is declared."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from mlpipeline.paths import STAGES, Paths
from mlpipeline.settings import load_params
from tests.closure import REPO, closure, module_file, stage_code_deps, stage_modules

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _entries(items: list) -> list[str]:
    return [next(iter(i)) if isinstance(i, dict) else i for i in items]


def _resolved(stage: str) -> tuple[set[str], set[str]]:
    """dvc.yaml's deps and outs of ``stage`` with ``${...}`` resolved from params.yaml."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())

    def resolve(text: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            node = params
            for part in match.group(1).split("."):
                node = node[part]
            return str(node)

        return re.sub(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}", lookup, text)

    entry = DVC_YAML[stage]
    deps = {resolve(d) for d in entry.get("deps", [])}
    outs = {resolve(o) for key in ("outs", "metrics", "plots") for o in _entries(entry.get(key, []))}
    return deps, outs


def test_every_stage_in_dvc_yaml_is_a_stage_and_runs_through_bin_stage() -> None:
    assert list(DVC_YAML) == list(STAGES)
    for stage, entry in DVC_YAML.items():
        assert entry["cmd"] == f"sh bin/stage {stage}"


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_the_stage_import_closure(stage: str) -> None:
    deps, _ = _resolved(stage)
    listed = {d for d in deps if d.startswith("src/")}
    wanted = set(stage_code_deps(stage))
    assert not wanted - listed, f"dvc.yaml's {stage} misses modules it imports: {sorted(wanted - listed)}"
    assert not listed - wanted, f"dvc.yaml's {stage} lists modules it never imports: {sorted(listed - wanted)}"
    assert {"bin/stage", f"requirements/{stage}.txt"} <= deps
    # Its environment is its own resolved packages, never the whole lock file or the image recipe.
    assert not deps & {"uv.lock", "pyproject.toml", "docker/Dockerfile"}


def test_the_closure_follows_indirect_and_lazy_imports() -> None:
    train, _ = stage_modules("train")
    assert "mlpipeline.core.columns" in train  # imported only through core.schema, never by train.py itself
    assert "mlpipeline.io.modeldir" in train
    assert "mlpipeline.cli" not in train  # the CLI is not part of any stage
    modules, _ = closure("mlpipeline.stages.evaluate")
    assert {"mlpipeline", "mlpipeline.stages", "mlpipeline.io"} <= modules  # parent packages run on import
    assert module_file("mlpipeline.nope") is None


@pytest.mark.parametrize("stage", STAGES)
def test_data_deps_and_outs_are_the_paths_the_code_uses(stage: str) -> None:
    deps, outs = _resolved(stage)
    paths = Paths.from_params(load_params(REPO / "params.yaml"))
    reads, writes = paths.stage_io(stage)
    data_deps = {d for d in deps if not d.startswith(("src/", "bin/", "requirements/"))}
    assert data_deps == {p.as_posix() for p in reads}
    assert outs == {p.as_posix() for p in writes}


def test_every_stage_but_the_first_waits_for_the_params_check() -> None:
    assert DVC_YAML["check-params"]["params"] == [{"params.yaml": None}]  # the whole file
    for stage in STAGES[1:]:
        assert "reports/params_check.json" in DVC_YAML[stage]["deps"]


def _distributions(requirements: str) -> set[str]:
    return {
        re.split(r"[=<>\[; ]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in requirements.splitlines()
        if line and not line.startswith((" ", "#"))
    }


def _providers(module: str) -> set[str]:
    found = importlib.metadata.packages_distributions().get(module, [])
    return {name.lower().replace("_", "-") for name in found}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_environment_holds_every_package_its_code_imports(stage: str) -> None:
    _, third_party = stage_modules(stage)
    installed = _distributions((REPO / "requirements" / f"{stage}.txt").read_text())
    missing = [m for m in sorted(third_party) if not _providers(m) & installed]
    assert not missing, f"{stage} imports {missing}, absent from requirements/{stage}.txt: add them to its group"


def test_every_imported_package_is_declared_directly() -> None:
    declared = {
        re.split(r"[=<>\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")
        for spec in [
            *PYPROJECT["project"]["dependencies"],
            *(s for group in PYPROJECT["dependency-groups"].values() for s in group if isinstance(s, str)),
        ]
    }
    _, used = closure(
        *(
            f"mlpipeline.{p.relative_to(REPO / 'src/mlpipeline').with_suffix('').as_posix().replace('/', '.')}"
            for p in (REPO / "src/mlpipeline").rglob("*.py")
            if p.name != "__init__.py"
        )
    )
    undeclared = [m for m in sorted(used) if not _providers(m) & declared]
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def _uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    if not Path(found).is_file():
        pytest.skip("uv is not installed here (make setup installs it)")
    return found


def test_requirements_files_are_exported_from_the_lock(tmp_path: Path) -> None:
    for stage in STAGES:
        group = [] if stage == "check-params" else ["--group", stage]
        out = tmp_path / f"{stage}.txt"
        subprocess.run(
            [
                _uv(),
                "export",
                "--frozen",
                "--no-default-groups",
                *group,
                "--no-emit-project",
                "--no-hashes",
                "--quiet",
                "-o",
                str(out),
            ],
            cwd=REPO,
            check=True,
            timeout=120,
        )
        committed = (REPO / "requirements" / f"{stage}.txt").read_text()
        strip = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
        assert strip(out.read_text()) == strip(committed), f"requirements/{stage}.txt is stale: run `make lock`"
