"""Local files: atomic writes (temp file + rename), reading inputs with clear errors, content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipeline.errors import ConfigError, DataContractError, MlpipelineError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one rename, on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp directory beside ``path``; on success it replaces ``path`` whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs should read like any other directory
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
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


def read_csv(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV written by an earlier stage (or given as input), naming the stage to run when it is missing."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise MlpipelineError(f"{path} not found: run the {what} stage first (`dvc repro`)") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataContractError(f"{path} is empty (not even a header row)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{path} is not a readable CSV: {exc}") from exc


def read_yaml(path: Path, what: str) -> Any:
    """Read a YAML configuration file (e.g. a data contract)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file {path} not found: check the path in params.yaml") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} file {path} is not valid YAML: {exc}") from exc


def md5(path: Path) -> str:
    """MD5 of a file's bytes: the same hash DVC 3 records in dvc.lock for a file output."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
