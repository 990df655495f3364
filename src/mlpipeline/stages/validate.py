"""Validate: check the raw data against its data contract and write ``reports/data_validation.json``."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from mlpipeline.core.contract import Contract, ValidationReport, check_table
from mlpipeline.errors import ConfigError, DataContractError, MlpipelineError
from mlpipeline.io.files import md5, read_yaml, require_input, write_json
from mlpipeline.io.raw import scan_raw
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, ValidateParams

logger = logging.getLogger(__name__)


def load_contract(path: Path) -> Contract:
    """Read a contract YAML file, naming the bad key when it is malformed."""
    data = read_yaml(path, "data contract")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"data contract {path} is malformed: {problems}") from exc


def run(params: ValidateParams, raw: Path, report: Path) -> ValidationReport:
    """Check ``raw``; write the report either way and raise DataContractError naming every failing column."""
    contract = load_contract(Path(params.contract))
    require_input(raw, "ingest")
    # Streams the file column-wise: memory stays bounded whatever its size.
    try:
        result = check_table(scan_raw(raw), contract, params.min_rows_per_class)
    except Exception as exc:  # polars' parse errors (ragged rows, bad UTF-8) have several types
        if isinstance(exc, MlpipelineError):
            raise
        raise DataContractError(f"{raw} is not a readable CSV: {str(exc).splitlines()[0]}") from exc
    # The hash ties this verdict to the exact bytes checked; the promotion gate compares it with the model's lineage.
    result = result.model_copy(update={"data_md5": md5(raw)})
    write_json(report, result.model_dump(mode="json"))
    if not result.passed:
        raise DataContractError(f"{raw} breaks data contract '{contract.name}': {result.summary()}. Report: {report}")
    logger.info(
        "%s satisfies contract '%s' (%d rows, %s%s)",
        raw,
        contract.name,
        result.rows,
        contract.task,
        f", classes {result.class_counts}" if result.class_counts else "",
    )
    return result


def main(params: Params, paths: Paths) -> ValidationReport:
    """The DVC stage: check ``data/raw/<ingest.name>.csv`` against ``validate.contract``."""
    return run(params.validate_, paths.dep("raw"), paths.out("data_validation"))
