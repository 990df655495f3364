"""Which project modules and third-party packages each pipeline stage imports, found by reading the code.

A stage runs ``python -m mlpipeline.stages <stage>`` (see bin/stage), which imports the runner package and the
stage's module; every ``mlpipeline.*`` module reachable from those through ``import`` statements (at module
level or inside functions, never under ``if TYPE_CHECKING``) is part of the stage's code, and editing any of
them must rerun it. Parent packages count too (importing ``a.b`` runs ``a/__init__.py``). The runtimes
(``mlpipeline.runtimes``: where a stage runs, e.g. in a container) are not followed: outputs do not depend on
them, which is why dvc.lock is the same whatever the runtime.

Run it to print each stage's code deps for dvc.yaml: ``python tests/closure.py``.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
NOT_FOLLOWED = ("mlpipeline.runtimes",)


def module_file(module: str) -> Path | None:
    """The source file of a project module, or None when it is not one."""
    base = SRC / Path(*module.split("."))
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
            for child in node.orelse:
                visit(child)
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
def direct_imports(module: str) -> frozenset[str]:
    """Every name ``module`` imports (project and third-party)."""
    path = module_file(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return frozenset(_imports(ast.parse(path.read_text(encoding="utf-8")), package))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(*roots: str) -> tuple[set[str], set[str]]:
    """(project modules, top-level third-party packages) reachable from ``roots``."""
    seen: set[str] = set()
    third_party: set[str] = set()
    todo = [m for root in roots for m in _with_parents(root)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in direct_imports(module):
            top = name.split(".")[0]
            if top != "mlpipeline":
                if top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
                continue
            if name.startswith(NOT_FOLLOWED):
                continue
            for candidate in _with_parents(name):
                if module_file(candidate) is not None and candidate not in seen:
                    todo.append(candidate)
    return seen, third_party


def stage_modules(stage: str) -> tuple[set[str], set[str]]:
    """The project modules and third-party packages of ``stage`` (as named in dvc.yaml)."""
    return closure("mlpipeline.stages.__main__", f"mlpipeline.stages.{stage.replace('-', '_')}")


def stage_code_deps(stage: str) -> list[str]:
    """The stage's project source files, as dvc.yaml lists them (relative to the repo)."""
    modules, _ = stage_modules(stage)
    files = {module_file(m) for m in modules}
    return sorted(p.relative_to(REPO).as_posix() for p in files if p is not None)


if __name__ == "__main__":
    from mlpipeline.paths import STAGES

    for name in STAGES:
        print(f"{name}:")
        for dep in stage_code_deps(name):
            print(f"  - {dep}")
