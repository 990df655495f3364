"""Local files: atomic writes (temp file + rename), reading inputs with clear errors, content hashes.

A write goes to a temp file beside its target, named after the writing process, and is renamed over the
target only when complete, so a reader sees the old file or the new one, never half of one. Temp files left
by a process that was killed are removed by the next write of the same target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipeline.core.columns import RAW_NULLS
from mlpipeline.errors import DataContractError, MlpipelineError, disk_full

if TYPE_CHECKING:
    import pandas as pd


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (unique with the pid on this kernel), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token() -> str:
    """``<pid>-<start time>`` of this process: names its temp files, so a later process can tell they are stale."""
    return f"{os.getpid()}-{_start_time(os.getpid()) or 0}"


def owner_alive(token: str) -> bool:
    """Whether the process that wrote ``token`` is still running (a reused pid has another start time)."""
    pid, _, started = token.partition("-")
    return pid.isdigit() and _start_time(int(pid)) == started


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def sweep_stale_temps(path: Path) -> None:
    """Remove temp files and directories of ``path`` left by writers that no longer run."""
    prefix = _temp_prefix(path)
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            if entry.name.startswith(prefix):
                token = entry.name.removeprefix(prefix).rsplit(".", 1)[0]
                if not owner_alive(token):
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)


@contextlib.contextmanager
def _naming_a_full_disk(path: Path) -> Iterator[None]:
    """A full disk while an output is written is an error naming the output (the OS names no file)."""
    try:
        yield
    except Exception as exc:
        full = disk_full(exc, path)
        if full is None:
            raise
        raise full from exc


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one rename, on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{owner_token()}.", suffix="", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _naming_a_full_disk(path):
            yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp directory beside ``path``; on success it replaces ``path`` whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(path)}{owner_token()}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs should read like any other directory
    try:
        with _naming_a_full_disk(path):
            yield tmp
        old = None
        if path.exists():
            old = path.parent / f"{_temp_prefix(path)}{owner_token()}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically with sorted keys, so equal data gives equal bytes."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, df: pd.DataFrame) -> None:
    """Write a CSV atomically (no index column, ``\\n`` line endings)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


PARQUET_MAGIC = b"PAR1"


def write_table(path: Path, df: pd.DataFrame) -> None:
    """Write a table atomically as CSV, or as Parquet when ``path`` ends in ``.parquet`` (column types kept).

    Parquet is written without an index, zstd-compressed; pyarrow writes no time or host into it, so the same
    data gives the same bytes and DVC sees no change.
    """
    if path.suffix.lower() != ".parquet":
        write_csv(path, df)
        return
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file another stage wrote; say which stage to run when it is missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MlpipelineError(f"{path} not found: run the {what} stage first (`dvc repro`)") from exc
    except json.JSONDecodeError as exc:
        raise MlpipelineError(
            f"{path} is not valid JSON ({exc}); rerun the {what} stage (`dvc repro -f {what}`)"
        ) from exc


def require_input(path: Path, what: str) -> None:
    """Fail with what to run when an input an earlier stage writes is missing or has not even a header row."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise MlpipelineError(f"{path} not found: run the {what} stage first (`dvc repro`)") from exc
    if size == 0:
        raise DataContractError(f"{path} is empty (not even a header row)")


def read_csv(path: Path, what: str, dtype: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV written by an earlier stage (or given as input), naming the stage to run when it is missing.

    ``dtype`` fixes the type of some columns (a schema's ``csv_dtypes()``: categories and class names as text).
    """
    import pandas as pd

    try:
        # Gaps are empty fields only (ingest wrote every missing-value token as one): "NA" may be a category.
        return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=RAW_NULLS)
    except FileNotFoundError as exc:
        raise MlpipelineError(f"{path} not found: run the {what} stage first (`dvc repro`)") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataContractError(f"{path} is empty (not even a header row)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{path} is not a readable CSV: {exc}") from exc


def read_table(path: Path, what: str, dtype: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a table an earlier stage wrote, CSV or Parquet (told by the file's first bytes, so a DVC cache
    file without a suffix reads too); ``dtype`` as for :func:`read_csv`."""
    try:
        with path.open("rb") as handle:
            parquet = handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    except FileNotFoundError as exc:
        raise MlpipelineError(f"{path} not found: run the {what} stage first (`dvc repro`)") from exc
    if not parquet:
        return read_csv(path, what, dtype)
    import pandas as pd

    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataContractError(
            f"{path} is not a readable Parquet file ({exc}); rerun the {what} stage (`dvc repro -f {what}`)"
        ) from exc
    return df.astype({name: kind for name, kind in (dtype or {}).items() if name in df.columns})


def read_yaml(path: Path, what: str) -> Any:
    """Read a YAML configuration file (e.g. a data contract) strictly: duplicate keys and syntax errors name
    the line and column."""
    from mlpipeline.settings import load_yaml, read_config_text

    return load_yaml(read_config_text(path, what, "check the path in params.yaml"), path)


def md5(path: Path) -> str:
    """MD5 of a file's bytes: the same hash DVC 3 records in dvc.lock for a file output."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
