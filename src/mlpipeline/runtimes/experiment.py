"""``mlpipeline exp`` (``make exp``): ``dvc exp run`` that leaves the workspace as it was when the experiment fails.

DVC writes an experiment's ``-S`` values into params.yaml before the first stage runs, and each stage that
finishes into dvc.lock, and undoes neither when a later stage fails: the next ``make run`` would then run on values
the user never typed (and git's stat cache can even hide the change from ``git status``). Here the overrides are
checked first (``check_with_overrides``), the params file and dvc.lock are kept in memory, and a failed or
interrupted experiment gets them back byte for byte, with the outputs of every stage it reran checked out as the
restored dvc.lock records them. A queued (``--queue``) or ``--temp`` experiment runs in a copy and never touches
the workspace, so it is passed to DVC as it is. A successful experiment stays in the workspace, as DVC leaves it.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mlpipeline.io.lineage import LOCK, locked_stages
from mlpipeline.tools import dvc_command

logger = logging.getLogger("mlpipeline")


def run_experiment(params_file: Path, dvc_args: Sequence[str]) -> int:
    """Check the overrides and code deps, run ``dvc exp run`` with ``dvc_args``, put the workspace back if it
    fails."""
    from mlpipeline.runtimes.pipeline import check_first, repro

    options = _options(dvc_args)
    check_first(params_file, options.set_param)
    if options.queue or options.temp or options.run_all:  # runs in a copy: the workspace is not DVC's to change
        return repro(dvc_args, command=("exp", "run"))
    kept = {path: path.read_bytes() if path.is_file() else None for path in (params_file, LOCK)}
    code = repro(dvc_args, command=("exp", "run"))
    if code:
        put_back(kept)
    return code


def _options(dvc_args: Sequence[str]) -> argparse.Namespace:
    """The ``dvc exp run`` options that decide what is checked and what the experiment may change; the rest are
    DVC's to read."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("-S", "--set-param", action="append", default=[])
    for flag in ("--queue", "--temp", "--run-all"):
        parser.add_argument(flag, action="store_true")
    return parser.parse_known_args(list(dvc_args))[0]


def put_back(kept: dict[Path, bytes | None]) -> None:
    """Write the kept files back as they were and check out the outputs of the stages whose lock entry the failed
    experiment changed (their last good versions are in the DVC cache)."""
    changed = _relocked_stages(kept.get(LOCK), LOCK.read_bytes() if LOCK.is_file() else None)
    for path, content in kept.items():
        if content is None:
            path.unlink(missing_ok=True)
        elif not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            logger.info("put %s back as it was before the experiment", path)
    if not changed:
        return
    done = subprocess.run([dvc_command(), "checkout", *changed], check=False, capture_output=True, text=True)
    if done.returncode:
        said = [line for line in (done.stderr + done.stdout).splitlines() if line.startswith("ERROR")]
        logger.warning(
            "could not check out the last good outputs of %s (`dvc checkout` puts them back: %s)",
            ", ".join(changed),
            said[0].removeprefix("ERROR: ") if said else f"it exited with {done.returncode}",
        )
        return
    logger.info("checked out the last good outputs of %s, as dvc.lock records them", ", ".join(changed))


def _relocked_stages(before: bytes | None, after: bytes | None) -> list[str]:
    """The stages with outputs in ``before`` (a dvc.lock's content) whose lock entry differs in ``after``."""
    old, new = locked_stages(before), locked_stages(after)
    return [name for name, entry in old.items() if entry.get("outs") and new.get(name) != entry]
