"""The stage graph as dvc.yaml describes it: the one place that lists the stages and the files each reads and writes.

Nothing else in the project writes a stage list or a stage's files down. The stage runner, the docker launcher,
the images, the Makefile, lineage, reproduce and the Airflow DAG all read them from here (the Airflow spec and
the code deps are generated from dvc.yaml by a command, and a test checks they are fresh).

A file is named in the code by its **key**: its name without the extension (``data/processed/train.csv`` is
``train``, ``models/model`` is ``model``), or the ``key`` in the output's ``meta`` when the name varies
(``data/raw/${ingest.name}.csv`` has ``meta: {key: raw}``). A stage asks for its inputs and outputs by key
(:class:`mlpipeline.paths.Paths`), so pointing a stage at another file, or putting a new stage in between, is an
edit of dvc.yaml alone. A dependency takes the key of the output that produces it.

Reading is cheap (one YAML file, ``${...}`` filled in from params.yaml as DVC does) so that every stage can do it.

Example:
    >>> graph = load()
    >>> graph.names[:2]
    ['check-params', 'ingest']
    >>> graph.stage("train").dep_key("data/processed/train.csv", graph)
    'train'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlpipeline.errors import ConfigError

DVC_YAML = Path("dvc.yaml")
PARAMS_FILE = Path("params.yaml")
# A stage of this project runs `sh bin/stage <name>`; DVC may hold other stages too (they are listed, not run).
RUNNER = "sh bin/stage"
CODE_DIRS = ("src/", "bin/")
ENV_DIR = "requirements/"
OUT_KINDS = ("outs", "metrics", "plots")
INTERPOLATION = re.compile(r"\$\{\s*([A-Za-z0-9_.-]+)\s*\}")


@dataclass(frozen=True)
class Out:
    """One output of a stage: its path (interpolated), its key and the dvc.yaml section that lists it."""

    path: str
    key: str
    kind: str


@dataclass(frozen=True)
class Stage:
    """One dvc.yaml stage, its entries interpolated from params.yaml."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[Out, ...]
    params: tuple[str, ...]

    @property
    def runs_here(self) -> bool:
        """Whether it is one of this project's stages (its cmd is ``sh bin/stage <name>``)."""
        return self.cmd.split() == [*RUNNER.split(), self.name]

    @property
    def code_deps(self) -> list[str]:
        return [dep for dep in self.deps if dep.startswith(CODE_DIRS)]

    @property
    def env(self) -> str | None:
        """The environment it runs in: the name of the ``requirements/<env>.txt`` it depends on."""
        found = [d for d in self.deps if d.startswith(ENV_DIR) and d.endswith(".txt") and d.count("/") == 1]
        return PurePosixPath(found[0]).stem if len(found) == 1 else None

    @property
    def data_deps(self) -> list[str]:
        """What it reads besides code and environment."""
        return [dep for dep in self.deps if not dep.startswith((*CODE_DIRS, ENV_DIR))]

    def out(self, key: str) -> Out:
        found = [out for out in self.outs if out.key == key]
        if len(found) != 1:
            keys = ", ".join(out.key for out in self.outs) or "none"
            raise ConfigError(
                f"dvc.yaml: stage {self.name!r} has {'no' if not found else 'more than one'} output {key!r} "
                f"(its outputs: {keys})"
            )
        return found[0]

    def dep_key(self, path: str, graph: Graph) -> str:
        """The key of one of its dependencies: that of the output producing it, else the file's name."""
        producer = graph.producer(path)
        return next(o.key for o in producer.outs if o.path == path) if producer else file_key(path)


@dataclass(frozen=True)
class Graph:
    """The stages of dvc.yaml, in its order."""

    stages: tuple[Stage, ...]

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    @property
    def project_stages(self) -> list[str]:
        """The stages that run this project's code (``sh bin/stage``), in order."""
        return [stage.name for stage in self.stages if stage.runs_here]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"dvc.yaml has no stage {name!r} (stages: {', '.join(self.names)})")

    def producer(self, path: str | Path) -> Stage | None:
        """The stage whose output ``path`` is (None for a source file)."""
        wanted = PurePosixPath(path).as_posix()
        return next((s for s in self.stages if any(o.path == wanted for o in s.outs)), None)

    def output(self, key: str) -> Path:
        """The one output of the whole pipeline with this key (e.g. ``raw``, ``promotion``)."""
        found = [out.path for stage in self.stages for out in stage.outs if out.key == key]
        if len(found) != 1:
            raise ConfigError(
                f"dvc.yaml has {'no' if not found else 'more than one'} output with key {key!r}"
                f"{': ' + ', '.join(found) if found else ''} (a key is the file name without extension, or "
                "`meta: {key: ...}` on the output)"
            )
        return Path(found[0])

    def upstream(self, name: str) -> list[str]:
        """The stages whose outputs ``name`` reads (an edge of ``dvc dag``), in dvc.yaml's order."""

        def inside(path: str, folder: str) -> bool:
            return path == folder or path.startswith(folder.rstrip("/") + "/")

        deps = self.stage(name).deps
        return [
            s.name
            for s in self.stages
            if s.name != name and any(inside(d, o.path) or inside(o.path, d) for d in deps for o in s.outs)
        ]

    def needs(self, name: str) -> list[str]:
        """Every stage ``name`` reads from, directly or not, in dvc.yaml's order (what runs before it)."""
        found: set[str] = set()
        todo = [name]
        while todo:
            for up in self.upstream(todo.pop()):
                if up not in found:
                    found.add(up)
                    todo.append(up)
        return [stage for stage in self.names if stage in found]

    def downstream(self, *names: str) -> list[str]:
        """``names`` and every stage that reads their outputs, directly or not, in dvc.yaml's order: what DVC
        reruns when their inputs change (check-params aside: its marker never changes, so it reruns nothing)."""
        found, grown = set(names), True
        while grown:
            before = len(found)
            for stage in self.stages:
                if any(up in found - {"check-params"} for up in self.upstream(stage.name)):
                    found.add(stage.name)
            grown = len(found) > before
        return [name for name in self.names if name in found]

    def envs(self) -> list[str]:
        """The environments the container stages run in (each has an image), in first-use order."""
        return list(dict.fromkeys(s.env for s in self.stages if s.runs_here and s.env and s.env != "check-params"))


def file_key(path: str) -> str:
    """A file's key by default: its name without the extension."""
    return PurePosixPath(path).stem


def lookup(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``a.b``; KeyError when a part is missing."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def interpolate(text: str, params: dict[str, Any]) -> str:
    """``text`` with each ``${a.b}`` replaced by params' value, as DVC does."""

    def value(match: re.Match[str]) -> str:
        try:
            found = lookup(params, match.group(1))
        except KeyError:
            raise ConfigError(
                f"dvc.yaml uses ${{{match.group(1)}}}, which params.yaml does not set: add it to params.yaml"
            ) from None
        return str(found).lower() if isinstance(found, bool) else str(found)

    return INTERPOLATION.sub(value, text)


def _entries(items: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"dvc.yaml: {where} must be a list")
    entries = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            ((name, options),) = item.items()
            entries.append((str(name), options if isinstance(options, dict) else {}))
        elif isinstance(item, str):
            entries.append((item, {}))
        else:
            raise ConfigError(f"dvc.yaml: {where}: cannot read entry {item!r}")
    return entries


def _stage(name: str, entry: Any, params: dict[str, Any]) -> Stage:
    if not isinstance(entry, dict) or "cmd" not in entry:
        raise ConfigError(
            f"dvc.yaml: stage {name!r} has no cmd (mlpipeline reads plain stages; foreach/matrix are not supported)"
        )

    def fill(text: str) -> str:
        return interpolate(text, params)

    outs = []
    for kind in OUT_KINDS:
        for path, options in _entries(entry.get(kind), f"{name}.{kind}"):
            meta: dict[str, Any] = options["meta"] if isinstance(options.get("meta"), dict) else {}
            resolved = PurePosixPath(fill(path)).as_posix()
            outs.append(Out(resolved, str(meta.get("key") or file_key(resolved)), kind))
    deps = tuple(PurePosixPath(fill(path)).as_posix() for path, _ in _entries(entry.get("deps"), f"{name}.deps"))
    params_used: list[Any] = []
    for item in entry.get("params") or []:
        params_used.extend(item if isinstance(item, dict) else [str(item)])
    return Stage(name, fill(str(entry["cmd"])), deps, tuple(outs), tuple(str(p) for p in params_used))


def parse(dvc_yaml_text: str, params: dict[str, Any], where: str = "dvc.yaml") -> Graph:
    """The graph of a dvc.yaml text, ``${...}`` filled in from ``params``."""
    import yaml

    try:
        data = yaml.load(dvc_yaml_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    stages = (data or {}).get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not stages:
        raise ConfigError(f"{where} lists no stages")
    return Graph(tuple(_stage(str(name), entry, params) for name, entry in stages.items()))


def load(root: Path = Path("."), params_file: Path | None = None) -> Graph:
    """The graph of ``root``'s dvc.yaml, interpolated from its params file."""
    from mlpipeline.settings import load_yaml, read_config_text

    text = read_config_text(root / DVC_YAML, "pipeline", "run from the project root (where dvc.yaml is)")
    params_path = params_file if params_file is not None else root / PARAMS_FILE
    params = load_yaml(params_path.read_text(encoding="utf-8"), params_path) if params_path.is_file() else {}
    return parse(text, params if isinstance(params, dict) else {}, str(root / DVC_YAML))
