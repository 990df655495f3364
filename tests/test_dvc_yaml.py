"""dvc.yaml is the one description of the stage graph, and it sees every input: each stage's code (its import
closure, written by `make deps`), the files it reads and writes (asked for by key, see mlpipeline.graph) and its
environment (its own resolved packages, not all of uv.lock); every imported package is declared."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from mlpipeline.adapt.codedeps import closure, module_file, stage_modules, write
from mlpipeline.graph import load
from mlpipeline.stages import module_of
from tests.conftest import REPO

GRAPH = load(REPO)
STAGES = GRAPH.project_stages
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_stage_runs_through_bin_stage_and_has_a_module() -> None:
    assert GRAPH.names == STAGES, "every dvc.yaml stage runs `sh bin/stage <name>`"
    for stage in STAGES:
        assert module_file(module_of(stage)) is not None, f"{stage}: no module {module_of(stage)}"


def test_code_deps_are_current() -> None:
    stale = write(REPO, check=True)
    assert not stale, f"dvc.yaml's code deps are stale for {stale}: run `make deps`"


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_its_environment_and_never_all_of_the_lock(stage: str) -> None:
    entry = GRAPH.stage(stage)
    assert entry.env is not None, f"{stage}: dvc.yaml lists no requirements/<env>.txt dep"
    assert (REPO / "requirements" / f"{entry.env}.txt").is_file()
    assert "bin/stage" in entry.deps
    assert not set(entry.deps) & {"uv.lock", "pyproject.toml", "docker/Dockerfile"}


def test_deps_writes_the_closure_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "src", tmp_path / "src")
    text = (tmp_path / "dvc.yaml").read_text()
    errors = "      - src/mlpipeline/errors.py\n"
    stale = text.replace("      - src/mlpipeline/io/files.py\n", "", 1).replace(
        errors, f"{errors}      - src/mlpipeline/cli/base.py\n", 1
    )
    (tmp_path / "dvc.yaml").write_text(stale)
    assert write(tmp_path, check=True) == ["check-params"]
    assert write(tmp_path) == ["check-params"]
    assert (tmp_path / "dvc.yaml").read_text() == text  # comments and order kept


def test_the_closure_follows_indirect_and_lazy_imports() -> None:
    train, _ = stage_modules("train")
    assert "mlpipeline.core.columns" in train  # imported only through core.schema, never by train.py itself
    assert "mlpipeline.io.modeldir" in train
    assert "mlpipeline.cli" not in train  # the CLI is not part of any stage
    modules, _ = closure("mlpipeline.stages.evaluate")
    assert {"mlpipeline", "mlpipeline.stages", "mlpipeline.io"} <= modules  # parent packages run on import
    assert module_file("mlpipeline.nope") is None


def keys_asked(stage: str) -> dict[str, set[str]]:
    """The keys the stage's module asks its Paths for: ``paths.dep("k")`` and ``paths.out("k")``."""
    path = module_file(module_of(stage))
    assert path is not None
    asked: dict[str, set[str]] = {"dep": set(), "out": set()}
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in asked
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "paths"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            asked[node.func.attr].add(str(node.args[0].value))
    return asked


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_reads_and_writes_exactly_its_dvc_yaml_files(stage: str) -> None:
    entry = GRAPH.stage(stage)
    asked = keys_asked(stage)
    outs = {out.key for out in entry.outs}
    assert asked["out"] == outs, f"{stage} writes {sorted(asked['out'])}, dvc.yaml lists {sorted(outs)}"
    deps = {entry.dep_key(dep, GRAPH): dep for dep in entry.data_deps}
    assert asked["dep"] <= set(deps), f"{stage} reads {sorted(asked['dep'] - set(deps))}, not in its dvc.yaml deps"
    # A dep the code does not ask for by key: the params check's marker (an order, not an input), or a file
    # whose path params.yaml names (dvc.yaml spells it `${...}`, e.g. the contract), which the stage reads by param.
    marker = {out.key for out in GRAPH.stage("check-params").outs}
    spelled = dict(
        zip(entry.deps, yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"], strict=True)
    )
    unread = {
        key
        for key, dep in deps.items()
        if key not in asked["dep"] and key not in marker and not re.fullmatch(r"\$\{[^}]+\}", spelled[dep])
    }
    assert not unread, f"dvc.yaml lists inputs of {stage} its code never reads: {sorted(unread)}"


def test_every_stage_but_the_first_waits_for_the_params_check() -> None:
    assert GRAPH.stage("check-params").params == ("params.yaml",)  # the whole file
    marker = GRAPH.stage("check-params").outs[0].path
    for stage in STAGES[1:]:
        assert marker in GRAPH.stage(stage).deps


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions(requirements: str) -> set[str]:
    return {
        _normalized(re.split(r"[=<>\[; ]", line, maxsplit=1)[0])
        for line in requirements.splitlines()
        if line and not line.startswith((" ", "#"))
    }


def _providers(module: str) -> set[str]:
    found = importlib.metadata.packages_distributions().get(module, [])
    return {_normalized(name) for name in found}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_environment_holds_every_package_its_code_imports(stage: str) -> None:
    _, third_party = stage_modules(stage)
    env = GRAPH.stage(stage).env
    installed = _distributions((REPO / "requirements" / f"{env}.txt").read_text())
    missing = [m for m in sorted(third_party) if not _providers(m) & installed]
    assert not missing, f"{stage} imports {missing}, absent from requirements/{env}.txt: add them to its group"


def test_every_imported_package_is_declared_directly() -> None:
    declared = {
        _normalized(re.split(r"[=<>\[; ]", spec, maxsplit=1)[0])
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
    envs = sorted({GRAPH.stage(stage).env or "" for stage in STAGES})
    for env in envs:
        group = [] if env == "check-params" else ["--group", env]
        out = tmp_path / f"{env}.txt"
        export = ["export", "--frozen", "--no-default-groups", *group, "--no-emit-project", "--no-hashes", "--quiet"]
        subprocess.run([_uv(), *export, "-o", str(out)], cwd=REPO, check=True, timeout=120)
        committed = (REPO / "requirements" / f"{env}.txt").read_text()
        strip = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
        assert strip(out.read_text()) == strip(committed), f"requirements/{env}.txt is stale: run `make lock`"


# ---- nothing restates the stage graph: no hand-written list of stages or of their outputs outside dvc.yaml ----

GENERATED = ("dvc.yaml", "dvc.lock", "airflow/dags/pipeline.json")


def _project_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    code = re.compile(r"(\.(py|sh|toml|ya?ml|cfg)|/Makefile|^Makefile|Dockerfile|^\.ci/run)$")
    return [
        REPO / name
        for name in listed
        if code.search(name) and name not in GENERATED and not name.startswith("benchmarks/naive/")
        if (REPO / name).is_file()
    ]


def _hand_list(items: list[str]) -> str | None:
    """Why ``items`` (the strings of one list, or the words of one line) restate dvc.yaml, if they do."""
    stages = set(items) & set(GRAPH.names)
    outputs = set(items) & {out.path for stage in GRAPH.stages for out in stage.outs}
    if len(stages) >= 3:
        return f"stages {sorted(stages)}"
    if len(outputs) >= 2:
        return f"stage outputs {sorted(outputs)}"
    return None


def test_no_list_of_stages_or_of_stage_outputs_is_written_by_hand() -> None:
    found = []
    for path in _project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(REPO)
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
                    elements = node.keys if isinstance(node, ast.Dict) else node.elts
                    strings = [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                    why = _hand_list(strings)
                    if why:
                        found.append(f"{where}:{node.lineno}: {why}")
            continue
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0] if not path.name.endswith(".json") else line
            why = _hand_list(re.findall(r"[\w./-]+", code))
            if why:
                found.append(f"{where}:{number}: {why}")
    assert not found, "derive these from dvc.yaml (mlpipeline.graph) instead:\n" + "\n".join(found)


def test_the_readme_pipeline_table_is_dvc_yaml_s() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## The pipeline\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z][a-z_-]*)` \|", section, re.MULTILINE)
    # Every stage it names is one of dvc.yaml's, in dvc.yaml's order (a stage of your own may be left out).
    assert rows, "README's pipeline section has no stage table"
    assert rows == [name for name in GRAPH.names if name in rows], f"README's pipeline table: {rows} vs dvc.yaml"


def test_adding_an_estimator_or_a_feature_reruns_train_onward_never_the_data_stages() -> None:
    registries = {"src/mlpipeline/core/estimators.py", "src/mlpipeline/core/features.py"}
    for stage in GRAPH.needs("train"):
        if stage != "check-params":  # it checks train's keys against them; its marker never changes
            assert not registries & set(GRAPH.stage(stage).deps), f"{stage} depends on an estimator or feature registry"
    assert registries <= set(GRAPH.stage("train").deps)
