"""The files one stage reads and writes, as its dvc.yaml entry lists them, by key (see :mod:`mlpipeline.graph`).

A stage never spells a path: it asks for ``paths.dep("train")`` (the training split it reads) or
``paths.out("model")`` (the model it writes). dvc.yaml says which file that is, so the same stage reads
``data/features/train.csv`` once a ``features`` stage writes it and dvc.yaml's train entry lists it.

Example:
    >>> paths = Paths.for_stage("train")
    >>> paths.dep("train"), paths.out("model")
    (PosixPath('data/processed/train.csv'), PosixPath('models/model'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlpipeline.errors import ConfigError
from mlpipeline.graph import Graph, load
from mlpipeline.settings import DEFAULT_PARAMS_FILE


@dataclass(frozen=True)
class Paths:
    """A stage's inputs and outputs by key, relative to the project (or experiment copy) it runs in."""

    stage: str
    params: Path
    deps: dict[str, list[Path]]
    outs: dict[str, Path]
    graph: Graph | None = field(default=None, repr=False)

    @classmethod
    def for_stage(cls, stage: str, params_file: Path = DEFAULT_PARAMS_FILE, root: Path = Path(".")) -> Paths:
        """The files of ``stage`` in ``root``'s dvc.yaml, interpolated with ``params_file``."""
        graph = load(root, params_file)
        entry = graph.stage(stage)
        deps: dict[str, list[Path]] = {}
        for dep in entry.data_deps:
            deps.setdefault(entry.dep_key(dep, graph), []).append(Path(dep))
        return cls(stage, params_file, deps, {out.key: Path(out.path) for out in entry.outs}, graph)

    def dep(self, key: str) -> Path:
        """The input with this key; ConfigError naming the stage's inputs when it has none (or several)."""
        found = self.deps.get(key, [])
        if len(found) != 1:
            raise ConfigError(
                f"stage {self.stage!r} needs {'an' if not found else 'one'} input {key!r}, and its deps in "
                f"dvc.yaml list {'none' if not found else len(found)} (its inputs: {', '.join(self.deps) or 'none'}). "
                f"Add the file to its deps (a file's key is its name without extension, or its producer's "
                "`meta: {key: ...}`)"
            )
        return found[0]

    def out(self, key: str) -> Path:
        """The output with this key; ConfigError naming the stage's outputs when it has none."""
        if key not in self.outs:
            raise ConfigError(
                f"stage {self.stage!r} writes an output {key!r} that its outs in dvc.yaml do not list "
                f"(its outputs: {', '.join(self.outs) or 'none'}): add it to the stage's outs"
            )
        return self.outs[key]

    def pipeline_output(self, key: str) -> Path:
        """The output ``key`` of the whole pipeline, whichever stage writes it (e.g. ``raw``)."""
        return (self.graph or load(Path("."), self.params)).output(key)

    def downstream_dep(self, out_key: str, key: str) -> Path | None:
        """The input ``key`` of the first stage that reads this stage's output ``out_key`` (e.g. the test split
        evaluate scores train's model on); None when no stage does."""
        graph = self.graph or load(Path("."), self.params)
        out = self.out(out_key).as_posix()
        for stage in graph.stages:
            if out in stage.deps:
                found = [dep for dep in stage.data_deps if stage.dep_key(dep, graph) == key]
                if found:
                    return Path(found[0])
        return None
