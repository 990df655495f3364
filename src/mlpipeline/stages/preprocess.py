"""Preprocess: split the validated raw data into ``data/processed/{train,test}.<format>`` plus ``schema.json``.

Classes are split stratified (each class keeps its share in both parts); a regression target is split at
random. The schema (task, feature kinds and categories, labels) comes from the validation report, so train and
evaluate read the split exactly as validate checked it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlpipeline.core.schema import Schema
from mlpipeline.core.split import split
from mlpipeline.errors import DataContractError
from mlpipeline.io.files import read_csv, read_json, write_json, write_table
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, PreprocessParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessResult:
    train_rows: int
    test_rows: int


def run(params: PreprocessParams, paths: Paths) -> PreprocessResult:
    """Split the raw data only if validate passed it; every output is replaced atomically."""
    report = read_json(paths.validation, "validate")
    if not report.get("passed"):
        raise DataContractError(
            f"{paths.validation} says the raw data failed validation: fix the data and rerun `dvc repro`"
        )
    if not report.get("schema"):
        raise DataContractError(f"{paths.validation} has no schema: rerun validate (`dvc repro validate`)")
    schema = Schema.model_validate(report["schema"])
    df = read_csv(paths.raw, "ingest", schema.csv_dtypes())
    try:
        train, test = split(df, params.test_size, params.seed, stratify=schema.task == "classification")
    except ValueError as exc:  # e.g. a test_size too small to hold one row per class
        raise DataContractError(f"cannot split {paths.raw} with test_size={params.test_size}: {exc}") from exc
    write_table(paths.train, train)
    write_table(paths.test, test)
    write_json(paths.schema, schema.model_dump(mode="json"))
    logger.info(
        "split %s into %d train / %d test rows (seed %d, %s)",
        paths.raw,
        len(train),
        len(test),
        params.seed,
        schema.task,
    )
    return PreprocessResult(train_rows=len(train), test_rows=len(test))


def main(params: Params, paths: Paths) -> PreprocessResult:
    """The DVC stage: split the validated raw data into ``data/processed/``."""
    return run(params.preprocess, paths)
