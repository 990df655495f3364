"""``mlpipeline contract``: draft a data contract from a file, and optionally point params.yaml at both.

Any CSV or Parquet file will do: your own (name its label column with ``--target``; it is read exactly as
ingest reads it, so the draft matches what validate will see) or ingest's output. Drafting never fails on the
data's content: numbers get a widened range, anything else is categorical, gaps make a column nullable. What
cannot give a contract (no feature column, a single class) is a clear error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from mlpipeline.adapt.paramsfile import set_params
from mlpipeline.core.columns import RAW_TARGET, snake_case
from mlpipeline.core.contract import MANY_CATEGORIES, Contract, infer_contract
from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.io.files import write_text
from mlpipeline.settings import SOURCES_DIR, load_params, parse_params, stage_names

logger = logging.getLogger(__name__)


def read_table(data: Path, target: str, task: str) -> pd.DataFrame:
    """The file in ingest's layout: through ingest's own reader when ``target`` names the label column."""
    if not data.is_file():
        raise ConfigError(f"{data}: no such file")
    if target:
        from mlpipeline.io.sources import read_source

        return pd.concat(list(read_source(str(data), target, task)), ignore_index=True)
    if data.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(data)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            raise DataContractError(f"{data} is not a readable Parquet file: {exc}") from exc
    else:
        try:
            df = pd.read_csv(data, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataContractError(f"{data} is not a readable CSV: {exc}") from exc
    if RAW_TARGET not in df.columns:
        raise ConfigError(
            f"{data} has no '{RAW_TARGET}' column (ingest's layout): name your label column with --target, e.g. "
            f"`mlpipeline contract {data} {Path('contracts') / (data.stem + '.yaml')} --target <column>`"
        )
    return df


def _header(drafted: Contract, data: Path) -> str:
    return (
        f"# Data contract '{drafted.name}' ({drafted.task}), drafted from {data.name} by `mlpipeline contract`.\n"
        "# Review it: numeric ranges are the observed ones widened by 10%; categories are the values seen;\n"
        "# nullable: true allows missing values (the model imputes them). Then commit it.\n"
    )


def draft_contract(
    data: Path,
    out: Path,
    name: str = "",
    target: str = "",
    task: str = "auto",
    use: bool = False,
    params_file: Path = Path("params.yaml"),
) -> Contract:
    """Draft and write the contract for ``data``; with ``use``, point ``params_file`` at the file and contract."""
    import yaml

    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"--task {task!r}: use auto, classification or regression")
    dataset = snake_case(name or data.stem)
    df = read_table(data, target, task)
    try:
        drafted = infer_contract(df, dataset)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise DataContractError(f"cannot draft a contract from {data}: {problems}") from exc
    for column, spec in drafted.features.items():
        if spec.kind == "categorical" and len(spec.categories or ()) > MANY_CATEGORIES:
            logger.warning(
                "column %r has %d distinct values: an id or free text? Drop it from the data, or keep it as a "
                "category (review %s)",
                column,
                len(spec.categories or ()),
                out,
            )
    document = drafted.model_dump(exclude_none=True)
    for spec in document["features"].values():
        if spec["kind"] == "categorical":
            del spec["dtype"]  # a category has values, not a number type
    if drafted.task == "regression":
        del document["labels"]
    write_text(out, _header(drafted, data) + yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    described = f"{len(drafted.labels)} labels" if drafted.task == "classification" else "a regression target"
    categorical = sum(spec.kind == "categorical" for spec in drafted.features.values())
    logger.info("wrote %s (%d features, %d categorical; %s)", out, len(drafted.features), categorical, described)
    if use:
        _use(data, out, dataset, target or RAW_TARGET, drafted.task, params_file)
    return drafted


def _use(data: Path, contract: Path, dataset: str, target: str, task: str, params_file: Path) -> None:
    if data.is_absolute() or Path(*data.parts[:2]) != Path(SOURCES_DIR):
        raise ConfigError(
            f"--use: {data} must be a path under {SOURCES_DIR}/ relative to the project (DVC tracks that folder as "
            f"ingest's input): copy it there first"
        )
    text = params_file.read_text(encoding="utf-8")
    load_params(params_file)  # a broken file is reported as it is, not edited
    updated = set_params(
        text,
        {
            "ingest": {"source": data.as_posix(), "name": dataset, "target": target, "task": task},
            "validate": {"contract": contract.as_posix()},
        },
    )
    from mlpipeline.settings import load_yaml

    sections = stage_names(params_file.parent / "dvc.yaml")  # your own stages' sections are allowed too
    parse_params(load_yaml(updated, params_file), params_file, sections)  # never write a file the pipeline refuses
    write_text(params_file, updated)
    logger.info(
        "%s now uses %s (ingest.name %s, target %r, %s) and %s: run `make run`",
        params_file,
        data,
        dataset,
        target,
        task,
        contract,
    )
