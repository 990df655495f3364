"""Preprocess: stratified split of the validated raw data into ``data/processed/{train,test}.csv``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlpipeline.core.split import stratified_split
from mlpipeline.errors import DataContractError
from mlpipeline.io.files import read_csv, read_json, write_csv
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, PreprocessParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessResult:
    train_rows: int
    test_rows: int


def run(params: PreprocessParams, raw: Path, report: Path, train_out: Path, test_out: Path) -> PreprocessResult:
    """Split ``raw`` only if validate passed it; both files are replaced atomically."""
    if not read_json(report, "validate").get("passed"):
        raise DataContractError(f"{report} says the raw data failed validation: fix the data and rerun `dvc repro`")
    df = read_csv(raw, "ingest")
    try:
        train, test = stratified_split(df, params.test_size, params.seed)
    except ValueError as exc:  # e.g. a test_size too small to hold one row per class
        raise DataContractError(f"cannot split {raw} with test_size={params.test_size}: {exc}") from exc
    write_csv(train_out, train)
    write_csv(test_out, test)
    logger.info("split %s into %d train / %d test rows (seed %d)", raw, len(train), len(test), params.seed)
    return PreprocessResult(train_rows=len(train), test_rows=len(test))


def main(params: Params, paths: Paths) -> PreprocessResult:
    """The DVC stage: split the validated raw data into ``data/processed/{train,test}.csv``."""
    return run(params.preprocess, paths.raw, paths.validation, paths.train, paths.test)
