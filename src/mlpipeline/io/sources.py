"""Raw data sources for ingest: scikit-learn's bundled data sets, a generated one of any size, or a CSV/Parquet file.

Every source yields the same shape: feature columns with snake_case names, then for classes ``target`` (integer
class code) and ``target_name`` (the label as text, whatever it looked like: a name or a number), for a
regression target only ``target`` (the value). File sources are streamed in chunks and passed through as text, so a
bad value reaches the validate stage, which names it, instead of crashing ingest. Text is trimmed and every
missing-value token (``ingest.missing``) becomes a gap; a row without a label is dropped, and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipeline.core.columns import MISSING_TOKENS, RAW_LABEL, RAW_TARGET, snake_case
from mlpipeline.errors import ConfigError, DataContractError
from mlpipeline.settings import MAX_AUTO_CLASSES, SKLEARN_DATASETS, SOURCES_DIR, SYNTHETIC_PREFIX, synthetic_rows

logger = logging.getLogger(__name__)

CHUNK_ROWS = 50_000


def read_source(
    source: str,
    target: str,
    task: str = "auto",
    chunk_rows: int = CHUNK_ROWS,
    missing: Collection[str] = MISSING_TOKENS,
) -> Iterator[pd.DataFrame]:
    """Yield the raw data set named by ``source`` in chunks of normalized rows (``task``: auto, classification or
    regression: how the label column is laid out; ``missing``: the values of a file that are gaps)."""
    if source.startswith("sklearn:"):
        yield _sklearn(source.removeprefix("sklearn:"))
        return
    if source.startswith(SYNTHETIC_PREFIX):
        try:
            rows = synthetic_rows(source)
        except ValueError as exc:
            raise ConfigError(f"ingest.source {exc}") from exc
        yield from synthetic(rows)
        return
    path = Path(source)
    if not path.is_file():
        raise ConfigError(
            f"ingest.source {source!r}: no such file. Put your data file in {SOURCES_DIR}/ (relative to the "
            f"project root), or use sklearn:<{'|'.join(SKLEARN_DATASETS)}>"
        )
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"ingest.source {source!r}: unsupported file type {suffix!r}; use .csv or .parquet")
    yield from _file(path, target, task, chunk_rows, frozenset(missing))


def _sklearn(name: str) -> pd.DataFrame:
    if name not in SKLEARN_DATASETS:
        raise ConfigError(f"ingest.source 'sklearn:{name}' is not bundled; choose one of {', '.join(SKLEARN_DATASETS)}")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame: pd.DataFrame = bunch.frame.rename(columns=snake_case)
    if SKLEARN_DATASETS[name] == "regression":
        frame[RAW_TARGET] = frame[RAW_TARGET].astype("float64")
        return frame
    names = [str(n) for n in bunch.target_names]
    frame[RAW_TARGET] = frame[RAW_TARGET].astype("int64")
    frame[RAW_LABEL] = frame[RAW_TARGET].map(dict(enumerate(names)))
    return frame


SYNTHETIC_SEED = 2026
SYNTHETIC_BLOCK = 65_536
SYNTHETIC_LABELS = ("low", "mid", "high")


def synthetic(rows: int) -> Iterator[pd.DataFrame]:
    """``rows`` generated rows in blocks of SYNTHETIC_BLOCK (memory stays bounded at any size), each block from
    its own seeded generator, so the data are the same on every run and machine.

    Three numbers (``x2`` with about 1% gaps), two categories (``size`` with about 2% gaps), and a class
    (``low``/``mid``/``high``) that depends on all of them plus noise: a model can learn it, not perfectly.
    """
    import numpy as np

    colours = np.array(["red", "green", "blue", "black"], dtype=object)
    sizes = np.array(["S", "M", "L"], dtype=object)
    for start in range(0, rows, SYNTHETIC_BLOCK):
        # Always a whole block from the block's own generator, cut to what is asked for: row i is the same
        # whatever the row count (synthetic:1000 is the head of synthetic:1000000).
        n = SYNTHETIC_BLOCK
        rng = np.random.default_rng([SYNTHETIC_SEED, start // SYNTHETIC_BLOCK])
        x1 = rng.normal(0.0, 1.0, n).round(4)
        x2 = rng.normal(5.0, 2.0, n).round(4)
        x3 = rng.uniform(0.0, 100.0, n).round(2)
        colour = colours[rng.integers(0, len(colours), n)]
        size = sizes[rng.integers(0, len(sizes), n)]
        effect = np.select([colour == "red", colour == "blue"], [1.0, -1.0], 0.0) + np.select(
            [size == "L", size == "S"], [0.2, -0.2], 0.0
        )
        score = 2.0 * x1 - 0.15 * (x2 - 5.0) + 0.01 * (x3 - 50.0) + effect + rng.normal(0.0, 0.15, n)
        codes = np.digitize(score, [-1.0, 1.0])
        frame = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "colour": colour, "size": size})
        frame.loc[rng.random(n) < 0.01, "x2"] = np.nan
        frame.loc[rng.random(n) < 0.02, "size"] = None
        frame[RAW_TARGET] = codes.astype("int64")
        frame[RAW_LABEL] = np.array(SYNTHETIC_LABELS, dtype=object)[codes]
        yield frame.iloc[: min(n, rows - start)]


def _natural_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _is_number(label: str) -> bool:
    try:
        float(label)
    except ValueError:
        return False
    return True


def infer_task(labels: set[str], complete: bool) -> str:
    """Classes, unless every label is a number and they are not integers or too many to be classes
    (``complete`` is false when collecting stopped at more than MAX_AUTO_CLASSES distinct labels)."""
    if not labels or not all(_is_number(label) for label in labels):
        return "classification"
    if not complete or len(labels) > MAX_AUTO_CLASSES:
        return "regression"
    return "classification" if all(float(label).is_integer() for label in labels) else "regression"


def _labels(path: Path, target: str, task: str, chunk_rows: int, missing: frozenset[str]) -> tuple[str, list[str]]:
    """One pass over the label column: the task (when ``auto``) and the sorted labels (numbers first)."""
    seen: set[str] = set()
    complete = True
    for chunk in _file_chunks(path, chunk_rows, columns=[target]):
        seen.update(v for v in _label_text(chunk[target], missing) if v)
        if task == "auto" and len(seen) > MAX_AUTO_CLASSES and all(_is_number(v) for v in seen):
            complete = False  # a numeric target with this many values is a regression target: stop collecting
            break
    resolved = infer_task(seen, complete) if task == "auto" else task
    return resolved, sorted(seen, key=_natural_key) if resolved == "classification" else []


def _file(path: Path, target: str, task: str, chunk_rows: int, missing: frozenset[str]) -> Iterator[pd.DataFrame]:
    chunks = _file_chunks(path, chunk_rows)
    first = next(chunks, None)
    if first is None:
        raise DataContractError(f"{path} has no header row: a data file needs column names and rows")
    if target not in first.columns:
        raise ConfigError(
            f"ingest.target {target!r} is not a column of {path} (columns: {', '.join(map(str, first.columns))}); "
            "set ingest.target to the label column"
        )
    # First pass: only the label column, to tell the task and give every class a stable integer code.
    task, labels = _labels(path, target, task, chunk_rows, missing)
    logger.info("%s: label column %r holds a %s target", path, target, task)
    codes = {label: code for code, label in enumerate(labels)}
    renamed = column_names([c for c in first.columns if c != target], path)
    clashing = [c for c, new in renamed.items() if new in (RAW_TARGET, RAW_LABEL)]
    for column in clashing:
        logger.warning(
            "ignoring column %r of %s: the label comes from %r (ingest.target); if %r holds the labels, set "
            "ingest.target: %s",
            column,
            path,
            target,
            column,
            column,
        )
    unlabelled = 0
    for chunk in _chunks_from(first, chunks):
        label = _label_text(chunk[target], missing)
        keep = label != ""
        unlabelled += int((~keep).sum())
        chunk, label = chunk[keep], label[keep]
        out = gaps(chunk.drop(columns=[target, *clashing]), missing).rename(columns=renamed)
        if task == "regression":
            out[RAW_TARGET] = label  # the value as written: validate names a bad one
        else:
            out[RAW_TARGET] = label.map(codes).astype("Int64")
            out[RAW_LABEL] = label
        yield out
    if unlabelled:
        logger.warning(
            "dropped %d row%s of %s with no label (column %r empty or a missing-value token): a row without a "
            "label cannot train or score a model",
            unlabelled,
            "s" if unlabelled != 1 else "",
            path,
            target,
        )


def source_names(path: Path, target: str) -> dict[str, str]:
    """Each feature's name as ``path`` writes it, by the snake_case name ingest gives it (those that differ)."""
    if path.suffix.lower() == ".csv":
        header = [str(c) for c in pd.read_csv(path, nrows=0, sep=separator(path), encoding="utf-8").columns]
    else:
        import pyarrow.parquet as pq

        header = list(pq.read_schema(path).names)
    renamed = column_names([c for c in header if c != target], path, quiet=True)
    return {new: str(old) for old, new in renamed.items() if new != old}


def column_names(columns: list[object], path: Path, quiet: bool = False) -> dict[object, str]:
    """Each column's snake_case name; names that come out the same get ``_2``, ``_3``..., with a warning (unless
    ``quiet``)."""
    renamed: dict[object, str] = {}
    taken: set[str] = set()
    for column in columns:
        base = snake_case(str(column))
        new, n = base, 1
        while new in taken:
            n += 1
            new = f"{base}_{n}"
        if new != base and not quiet:
            logger.warning("column %r of %s is named %r (%r is taken by another column)", column, path, new, base)
        taken.add(new)
        renamed[column] = new
    return renamed


def gaps(frame: pd.DataFrame, missing: frozenset[str]) -> pd.DataFrame:
    """Text columns trimmed, and every missing-value token in them an empty field (a gap)."""
    text = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text:
        return frame
    out = frame.copy()
    tokens = list(missing)
    for column in text:
        values = out[column].str.strip()  # object in, object out: no conversion of the column
        out[column] = values.mask(values.isin(tokens), "")
    return out


def _label_text(values: pd.Series, missing: frozenset[str]) -> pd.Series:
    """The label as trimmed text, "" where it is missing."""
    text = values.astype("string").str.strip().fillna("")
    return text.mask(text.isin(missing), "").astype(object)


def _chunks_from(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _file_chunks(path: Path, chunk_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() == ".csv":
        yield from _csv_chunks(path, chunk_rows, columns)
        return
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataContractError(f"{path} is not a readable Parquet file: {exc}") from exc


# Separators other than the comma that a CSV export may use (Excel in many locales writes ';').
OTHER_SEPARATORS = (";", "\t", "|")


# The first bytes of archives a CSV is often shipped in.
ARCHIVES = {b"PK\x03\x04": "a zip archive (unzip it)", b"\x1f\x8b": "gzip-compressed (gunzip it)"}


def header_line(path: Path) -> tuple[int, str]:
    """How many blank lines come before the header (pandas skips them too), and the header line."""
    with path.open("rb") as handle:
        start = handle.read(4)
        packed = next((what for magic, what in ARCHIVES.items() if start.startswith(magic)), "")
        if packed:
            raise DataContractError(f"{path} is {packed}: put the CSV inside it in {SOURCES_DIR}/ and use that")
        handle.seek(0)
        for blank, line in enumerate(handle):
            text = line.decode("utf-8", errors="replace")
            if text.strip():
                return blank, text
    return 0, ""


def separator(path: Path) -> str:
    """The file's field separator, told from its header: the comma unless another separator splits the header
    into more fields (quoted names kept whole)."""
    import csv

    header = header_line(path)[1]
    try:
        fields = {sep: len(next(csv.reader([header], delimiter=sep), [])) for sep in (",", *OTHER_SEPARATORS)}
    except csv.Error as exc:  # e.g. a lone carriage return: old Mac line ends, or not text at all
        raise DataContractError(
            f"{path} is not a readable CSV: its first line does not parse ({exc}); save it as CSV text with "
            "\\n or \\r\\n line ends"
        ) from exc
    best = max(fields, key=lambda sep: fields[sep])
    if fields[best] <= max(fields[","], 1):
        return ","
    logger.info("%s: the header is %r-separated: reading it so", path, best)
    return best


def _csv_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    """The file's rows as text, ``chunk_rows`` at a time (pyarrow's streaming reader, which, unlike pandas, never
    fills a short line with gaps: a line with fewer or more fields than the header is an error naming it)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep = separator(path)
    try:  # pandas names the columns (an empty name is "Unnamed: 0", a repeated one "x.1"), as users know them
        names = [str(c) for c in pd.read_csv(path, nrows=0, sep=sep, encoding="utf-8").columns]
    except pd.errors.EmptyDataError:
        return
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{path} is not a readable CSV: {exc}") from exc
    keep = columns or names
    bad: list[Any] = []

    def ragged(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=header_line(path)[0] + 1),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=ragged),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(keep, pa.string()),
                include_columns=keep,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from _rechunked(reader, chunk_rows, keep)
    except pa.ArrowInvalid as exc:
        if bad:
            row = bad[0]
            text = row.text if len(row.text) <= 80 else row.text[:77] + "..."
            raise DataContractError(
                f"{path} line {row.number} ({text!r}) has {row.actual_columns} fields where the header has "
                f"{row.expected_columns}: a separator missing, or a value with the separator in it unquoted "
                '("1,5"); fix that line'
            ) from exc
        raise DataContractError(f"{path} is not a readable CSV: {str(exc).splitlines()[0]}") from exc


def _rechunked(reader: Any, chunk_rows: int, columns: list[str]) -> Iterator[pd.DataFrame]:
    """pyarrow's batches (sized in bytes) as frames of ``chunk_rows`` rows, the index counting on across them."""
    import pyarrow as pa

    start, pending = 0, None
    for batch in reader:
        table = pa.Table.from_batches([batch])
        pending = table if pending is None else pa.concat_tables([pending, table])
        while pending.num_rows >= chunk_rows:
            yield _frame(pending.slice(0, chunk_rows), start)
            start, pending = start + chunk_rows, pending.slice(chunk_rows)
    if pending is not None and pending.num_rows:
        yield _frame(pending, start)
    elif not start:  # a header and no rows: one empty frame, so the columns are known
        yield pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})


def _frame(table: Any, start: int) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame
