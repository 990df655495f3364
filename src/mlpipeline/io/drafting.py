"""``mlpipeline contract``: draft a data contract from a file, and optionally point params.yaml at both.

Any CSV or Parquet file will do: your own (name its label column with ``--target``; it is read exactly as
ingest reads it, so the draft matches what validate will see) or ingest's output. Drafting never fails on the
data's content: numbers get a widened range, anything else is categorical, gaps make a column nullable. What
cannot give a contract (no feature column, a single class) is a clear error.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from mlpipeline.adapt.paramsfile import set_params
from mlpipeline.core.columns import MISSING_TOKENS, RAW_TARGET, snake_case
from mlpipeline.core.contract import MANY_CATEGORIES, Contract, infer_contract
from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.io.files import write_text
from mlpipeline.settings import SOURCES_DIR, load_params, parse_params, stage_names

logger = logging.getLogger(__name__)


def read_table(data: Path, target: str, task: str, missing: Collection[str] = MISSING_TOKENS) -> pd.DataFrame:
    """The file as the raw file ingest would write from it, read back as text the way validate reads it (gaps
    as NaN), so a contract drafted from it accepts that raw file. Without ``target`` the file is taken to be in
    ingest's layout already (its ``target`` column)."""
    import io

    from mlpipeline.io.raw import read_raw_text, write_chunk
    from mlpipeline.io.sources import gaps, read_source

    if not data.is_file():
        raise ConfigError(f"{data}: no such file")
    chunks: Iterable[pd.DataFrame]
    if not target:
        if data.suffix.lower() in (".parquet", ".pq"):
            try:
                chunks = [pd.read_parquet(data)]
            except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
                raise DataContractError(f"{data} is not a readable Parquet file: {exc}") from exc
        else:
            try:
                chunks = [read_raw_text(data)]
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise DataContractError(f"{data} is not a readable CSV: {exc}") from exc
        frame = next(iter(chunks))
        if RAW_TARGET not in frame.columns:
            raise ConfigError(
                f"{data} has no '{RAW_TARGET}' column (ingest's layout): name your label column with --target, "
                f"e.g. `mlpipeline contract {data} {Path('contracts') / (data.stem + '.yaml')} --target <column>`"
            )
        chunks = [gaps(frame, frozenset(missing))]
    else:
        chunks = read_source(str(data), target, task, missing=missing)
    buffer = io.BytesIO()
    for chunk in chunks:
        write_chunk(buffer, chunk, header=not buffer.tell())
    buffer.seek(0)
    return read_raw_text(buffer)


def _with_source_names(drafted: Contract, names: dict[str, str]) -> Contract:
    """Each renamed feature with its name in the file, unless that name is another feature's (``Age`` and
    ``age`` become ``age`` and ``age_2``: ``age`` must mean one column at the server)."""
    taken = set(drafted.features)
    features = {
        column: spec.model_copy(update={"source_name": names[column]})
        if column in names and names[column] not in taken
        else spec
        for column, spec in drafted.features.items()
    }
    return drafted.model_copy(update={"features": features})


def _missing(params_file: Path) -> list[str]:
    """The missing-value tokens of ``params_file``'s ingest section (ingest reads the data with them), else the
    defaults."""
    if not params_file.is_file():
        return list(MISSING_TOKENS)
    try:
        return load_params(params_file).ingest.missing
    except ConfigError:
        logger.warning("%s does not load: drafting with the default missing-value tokens", params_file)
        return list(MISSING_TOKENS)


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
    df = read_table(data, target, task, _missing(params_file))
    try:
        drafted = infer_contract(df, dataset)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise DataContractError(f"cannot draft a contract from {data}: {problems}") from exc
    if target:  # the file's own column names, which the server accepts beside the snake_case ones
        from mlpipeline.io.sources import source_names

        drafted = _with_source_names(drafted, source_names(data, target))
    for column, spec in drafted.features.items():
        if spec.kind == "categorical" and len(spec.categories or ()) > MANY_CATEGORIES:
            logger.warning(
                "column %r has %d distinct values: an id or free text? Drop it from the data, or keep it as a "
                "category (review %s)",
                column,
                len(spec.categories or ()),
                out,
            )
    for column, reason in drafted.ignored.items():
        logger.warning(
            "column %r is left out of the model: %s. To use it anyway, move it from `ignored:` to `features:` in %s",
            column,
            reason,
            out,
        )
    document = drafted.model_dump(exclude_none=True)
    if not drafted.ignored:
        del document["ignored"]
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
