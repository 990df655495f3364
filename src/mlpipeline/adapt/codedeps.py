"""The code a stage runs, found by reading its imports, and written into dvc.yaml by ``mlpipeline deps``.

A stage runs ``python -m mlpipeline.stages <stage>`` (see bin/stage), which imports the runner package and the
stage's module; every ``mlpipeline.*`` module reachable from those through ``import`` statements (at module level
or inside functions, never under ``if TYPE_CHECKING``) is part of the stage's code, and editing any of them must
rerun it. Parent packages count too (importing ``a.b`` runs ``a/__init__.py``). The runtimes
(``mlpipeline.runtimes``: where a stage runs, e.g. in a container) are not followed: outputs do not depend on them,
which is why dvc.lock is the same whatever the runtime.

``mlpipeline deps`` (``make deps``) rewrites the code deps of every ``sh bin/stage`` stage in dvc.yaml from this,
keeping the rest of the file (comments included) as it is; ``--check`` only says whether they are current (the
tests run it). Nobody pastes module lists by hand.
"""

from __future__ import annotations

import ast
import io
import sys
from functools import cache
from pathlib import Path

from mlpipeline.errors import ConfigError
from mlpipeline.stages import module_of as stage_module

SRC = Path(__file__).resolve().parents[2]
REPO = SRC.parent
NOT_FOLLOWED = ("mlpipeline.runtimes",)
RUNNER_FILE = "bin/stage"


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The source file of a project module, or None when it is not one."""
    base = src / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of everything imported in ``tree`` (``from a import b`` yields ``a`` and ``a.b``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@cache
def direct_imports(module: str, src: Path = SRC) -> frozenset[str]:
    """Every name ``module`` imports (project and third-party)."""
    path = module_file(module, src)
    if path is None:
        raise ConfigError(f"no module {module} under {src}")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return frozenset(_imports(ast.parse(path.read_text(encoding="utf-8")), package))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(*roots: str, src: Path = SRC) -> tuple[set[str], set[str]]:
    """(project modules, top-level third-party packages) reachable from ``roots``."""
    seen: set[str] = set()
    third_party: set[str] = set()
    todo = [m for root in roots for m in _with_parents(root)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in direct_imports(module, src):
            top = name.split(".")[0]
            if top != "mlpipeline":
                if top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
                continue
            if name.startswith(NOT_FOLLOWED):
                continue
            for candidate in _with_parents(name):
                if module_file(candidate, src) is not None and candidate not in seen:
                    todo.append(candidate)
    return seen, third_party


def stage_modules(stage: str, src: Path = SRC) -> tuple[set[str], set[str]]:
    """The project modules and third-party packages of ``stage`` (as named in dvc.yaml)."""
    return closure("mlpipeline.stages.__main__", stage_module(stage), src=src)


def stage_code_deps(stage: str, root: Path = REPO) -> list[str]:
    """The stage's code as dvc.yaml lists it (relative to ``root``): bin/stage and its project source files."""
    src = root / "src"
    modules, _ = stage_modules(stage, src)
    files = {module_file(m, src) for m in modules}
    return [RUNNER_FILE, *sorted(p.relative_to(root).as_posix() for p in files if p is not None)]


def _yaml() -> object:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def stale_stages(root: Path = REPO) -> list[str]:
    """The ``sh bin/stage`` stages whose code deps in dvc.yaml are not their import closure."""
    return write(root, check=True)


def write(root: Path = REPO, check: bool = False) -> list[str]:
    """Rewrite each project stage's code deps in ``root``/dvc.yaml (or with ``check`` only compare); return the
    stages whose deps were (or would be) changed. Other deps keep their order; the code comes after them."""
    from mlpipeline.graph import RUNNER, load

    graph = load(root)
    yaml = _yaml()
    path = root / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    data = yaml.load(text)  # type: ignore[attr-defined]
    changed = []
    for stage in graph.stages:
        if not stage.runs_here:
            continue
        if module_file(stage_module(stage.name), root / "src") is None:
            raise ConfigError(
                f"dvc.yaml's stage {stage.name!r} runs `{RUNNER} {stage.name}`, but there is no module "
                f"src/{stage_module(stage.name).replace('.', '/')}.py: write it (`mlpipeline new stage`)"
            )
        deps = data["stages"][stage.name].setdefault("deps", [])
        wanted = stage_code_deps(stage.name, root)
        if [d for d in deps if str(d).startswith(("src/", "bin/"))] == wanted:
            continue
        changed.append(stage.name)
        kept = [d for d in deps if not str(d).startswith(("src/", "bin/"))]
        deps.clear()
        deps.extend([*kept, *wanted])
    if changed and not check:
        out = io.StringIO()
        yaml.dump(data, out)  # type: ignore[attr-defined]
        from mlpipeline.io.files import write_text

        write_text(path, out.getvalue())
    return changed
