"""Ingest: copy the configured source into ``data/raw/<name>.csv`` in one normalized shape, streaming."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.io.files import atomic_path
from mlpipeline.io.raw import write_chunk
from mlpipeline.io.sources import read_source
from mlpipeline.paths import Paths
from mlpipeline.settings import IngestParams, Params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    path: Path
    rows: int
    columns: list[str]


def run(params: IngestParams, out: Path) -> IngestResult:
    """Stream ``params.source`` into ``out``; the file appears only when complete."""
    rows = 0
    columns: list[str] = []
    with atomic_path(out) as tmp, tmp.open("wb") as handle:
        for chunk in read_source(params.source, params.target, params.task, missing=params.missing):
            if not columns:
                columns = [str(c) for c in chunk.columns]
            elif [str(c) for c in chunk.columns] != columns:
                raise DataContractError(f"{params.source}: columns changed between chunks")
            write_chunk(handle, chunk, header=not handle.tell())
            rows += len(chunk)
    logger.info("ingested %d rows x %d columns from %s into %s", rows, len(columns), params.source, out)
    return IngestResult(path=out, rows=rows, columns=columns)


def main(params: Params, paths: Paths) -> IngestResult:
    """The DVC stage: ``ingest.source`` into ``data/raw/<ingest.name>.csv``."""
    sources = paths.dep("sources")
    source = Path(params.ingest.source)
    if ":" not in params.ingest.source and sources not in source.parents:
        raise ConfigError(
            f"ingest.source {source} is not under {sources}, the folder dvc.yaml tracks as ingest's input: an edit "
            "of it would not rerun the pipeline. Move the file there"
        )
    return run(params.ingest, paths.out("raw"))
