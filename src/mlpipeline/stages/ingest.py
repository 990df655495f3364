"""Ingest: copy the configured source into ``data/raw/<name>.csv`` in one normalized shape, streaming."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlpipeline.errors import DataContractError
from mlpipeline.io.files import atomic_path
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
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        for chunk in read_source(params.source, params.target, params.task):
            if not columns:
                columns = [str(c) for c in chunk.columns]
                chunk.to_csv(handle, index=False, lineterminator="\n")
            else:
                if [str(c) for c in chunk.columns] != columns:
                    raise DataContractError(f"{params.source}: columns changed between chunks")
                chunk.to_csv(handle, index=False, header=False, lineterminator="\n")
            rows += len(chunk)
    logger.info("ingested %d rows x %d columns from %s into %s", rows, len(columns), params.source, out)
    return IngestResult(path=out, rows=rows, columns=columns)


def main(params: Params, paths: Paths) -> IngestResult:
    """The DVC stage: ``ingest.source`` into ``data/raw/<ingest.name>.csv``."""
    return run(params.ingest, paths.raw)
