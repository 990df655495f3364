#!/usr/bin/env python3
"""The shared dependency layers of docker/Dockerfile: what a layer installs, and which layer an image starts from.

A layer is defined by packages, never by stage names: ``install --having polars --lacking scikit-learn`` selects
the dependency groups of pyproject.toml (all but ``dev``) whose locked export holds polars and not scikit-learn,
and installs, hash-checked from uv.lock, exactly the requirement lines that every selected group has. A layer's
selection also keeps its parents' conditions, so a layer never holds a package one of its groups does not need.
Adding a stage group therefore needs no edit here: its image starts from the deepest layer whose conditions it
meets (``node GROUP`` prints it; ``mlpipeline images`` passes it to the build as NODE), then syncs the rest.

Usage (standard library only; in an image build and on the host alike):
    python3 install_shared.py install [--having PKG]... [--lacking PKG]...
    python3 install_shared.py node GROUP... [--dockerfile docker/Dockerfile]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from functools import cache
from pathlib import Path

NOT_IMAGES = ("dev",)
NODE = re.compile(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", re.IGNORECASE)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def groups(project: Path) -> list[str]:
    """The dependency groups an image can be built from."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return [name for name in data.get("dependency-groups", {}) if name not in NOT_IMAGES]


@cache
def export(project: Path, group: str) -> frozenset[str]:
    """The group's locked requirement lines (version, marker and hashes each on one line)."""
    uv = os.environ.get("UV", "uv")
    text = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-default-groups",
            "--group",
            group,
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return frozenset(
        line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()[:1] not in ("", "#")
    )


def packages(lines: frozenset[str]) -> set[str]:
    return {normalized(re.split(r"[=<>~!;\[ ]", line, maxsplit=1)[0]) for line in lines}


def holds(project: Path, group: str, having: list[str], lacking: list[str]) -> bool:
    """Whether the group (or several, space-separated: their union) meets the conditions."""
    names = set().union(*(packages(export(project, g)) for g in group.split()))
    return all(normalized(p) in names for p in having) and not any(normalized(p) in names for p in lacking)


def shared(project: Path, having: list[str], lacking: list[str]) -> tuple[list[str], set[str]]:
    """The selected groups and the requirement lines all of them have."""
    selected = [g for g in groups(project) if holds(project, g, having, lacking)]
    lines = set.intersection(*(set(export(project, g)) for g in selected)) if selected else set()
    return selected, lines


def layers(dockerfile: Path) -> dict[str, tuple[str, list[str], list[str]]]:
    """Each layer of the Dockerfile: its parent and its own --having / --lacking conditions."""
    found: dict[str, tuple[str, list[str], list[str]]] = {}
    current = None
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        node = NODE.match(line.strip())
        if node:
            current = node.group(2)
            found[current] = (node.group(1), [], [])
        elif current and "install_shared.py install" in line:
            words = shlex.split(line.split("install_shared.py install", 1)[1].split("&&")[0])
            for flag, value in zip(words[::2], words[1::2], strict=False):
                found[current][1 if flag == "--having" else 2].append(value)
    return found


def conditions(tree: dict[str, tuple[str, list[str], list[str]]], node: str) -> tuple[list[str], list[str]]:
    having: list[str] = []
    lacking: list[str] = []
    while node in tree:
        parent, own_having, own_lacking = tree[node]
        having, lacking = [*own_having, *having], [*own_lacking, *lacking]
        node = parent
    return having, lacking


def node_of(project: Path, group: str, dockerfile: Path) -> str:
    """The deepest layer whose conditions (its own and its parents') the group meets; ``env`` when none."""
    tree = layers(dockerfile)

    def depth(name: str) -> int:
        count = 0
        while name in tree:
            count, name = count + 1, tree[name][0]
        return count

    best = "env"
    for name in tree:
        having, lacking = conditions(tree, name)
        if (having or lacking) and depth(name) > depth(best) and holds(project, group, having, lacking):
            best = name
    return best


def install(project: Path, having: list[str], lacking: list[str]) -> None:
    selected, lines = shared(project, having, lacking)
    print(f"install-shared {' '.join(selected) or '(no group)'}: {len(lines)} packages", flush=True)
    if not lines:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("\n".join(sorted(lines)) + "\n")
        requirements.flush()
        python = os.environ.get("UV_PROJECT_ENVIRONMENT", "/opt/venv") + "/bin/python"
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "--python",
                python,
                "--no-deps",
                "--require-hashes",
                "--quiet",
                "-r",
                requirements.name,
            ],
            check=True,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="install_shared.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("install")
    add.add_argument("--having", action="append", default=[])
    add.add_argument("--lacking", action="append", default=[])
    choose = commands.add_parser("node")
    choose.add_argument("group", nargs="+")
    choose.add_argument("--dockerfile", type=Path, default=Path(__file__).with_name("Dockerfile"))
    args = parser.parse_args(argv)
    project = Path.cwd()
    if args.command == "install":
        install(project, args.having, args.lacking)
    else:
        unknown = [group for group in args.group if group not in groups(project)]
        if unknown:
            print(f"no dependency group {', '.join(unknown)} in pyproject.toml", file=sys.stderr)
            return 2
        print(node_of(project, " ".join(args.group), args.dockerfile))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
