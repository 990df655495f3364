"""``mlpipeline run``: the whole pipeline as ``make run`` runs it, exiting with the failed stage's own code.

DVC exits 255 whatever a stage exited with, and GNU make exits 2 whatever its recipe did, so neither tells a
script whether the data (3), the params (2) or a service (4) failed. This runs ``dvc repro``, passes its output
through as it comes, reads the failed stage and its code from DVC's error line, ends with one line naming both,
and exits with that code (``make run`` prints it as ``Error 3`` in its last line, then exits 2 as make does).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpipeline.errors import EXIT_ERROR, EXIT_INTERRUPTED, MlpipelineError, exit_codes
from mlpipeline.tools import dvc_command

logger = logging.getLogger("mlpipeline")

# DVC's words for a stage command that failed (dvc/stage/exceptions.py StageCmdFailedError, dvc/repo/reproduce.py).
FAILED_STAGE = re.compile(r"failed to reproduce '(?P<stage>[^']+)': failed to run: .*, exited with (?P<code>-?\d+)")


def run(params_file: Path, dvc_args: Sequence[str]) -> int:
    """Check params and code deps, reproduce, re-gate an applied experiment's verdict, show the metrics."""
    check_first(params_file, [])
    code = repro(dvc_args) or regate_experiment_verdict(params_file)
    if code:
        return code
    print(flush=True)
    return _dvc("metrics", "show")


def check_first(params_file: Path, set_params: list[str]) -> None:
    """Check the params file with an experiment's ``-S`` overrides, then bring dvc.yaml's code deps up to date."""
    from mlpipeline.adapt.codedeps import write
    from mlpipeline.runtimes.overrides import check_with_overrides

    checked = check_with_overrides(params_file, set_params)
    logger.info("%s is valid%s", params_file, f" ({checked} combinations of -S checked)" if set_params else "")
    changed = write(Path.cwd())
    if changed:
        logger.info("dvc.yaml's code deps rewritten for %s", ", ".join(changed))


def repro(dvc_args: Sequence[str], command: Sequence[str] = ("repro",)) -> int:
    """``dvc repro`` (or ``dvc exp run``: ``command``) with its output passed through; a failed stage's own exit
    code instead of DVC's 255, its last good outputs put back."""
    try:
        proc = subprocess.Popen(
            [dvc_command(), *command, *dvc_args], stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1
        )
    except FileNotFoundError as exc:
        raise MlpipelineError("dvc not found: run `make setup` (or use `make run`)") from exc
    failed: tuple[str, int] | None = None
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            found = FAILED_STAGE.search(line)
            if found:
                failed = (found["stage"], int(found["code"]))
        returncode = proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        return EXIT_INTERRUPTED
    if not returncode:
        return 0
    if failed is None:
        logger.error("dvc repro failed (exit %d): see DVC's message above", returncode)
        return EXIT_ERROR
    stage, code = failed
    if code < 0:  # killed by a signal: the shell's convention
        code = 128 - code
    restore(stage)
    meaning = exit_codes().get(code, "see the stage's message above")
    logger.error("stage '%s' failed with exit code %d (%s); its message is above", stage, code, meaning)
    return code


def restore(stage: str) -> None:
    """Put back the outputs DVC removed before running ``stage``, as dvc.lock still records them (a failed stage
    is not locked): a mistake only the data reveals (a test_size leaving a class no rows) loses nothing."""
    from mlpipeline.io.lineage import LOCK, locked_stages

    locked = locked_stages(LOCK.read_bytes() if LOCK.is_file() else None)
    outputs = [out["path"] for out in locked.get(stage, {}).get("outs", [])]
    if not outputs:  # never run to the end before: nothing to put back
        return
    done = subprocess.run([dvc_command(), "checkout", stage], check=False, capture_output=True, text=True)
    if done.returncode:  # e.g. the stage wrote new outputs before it failed: DVC will not overwrite those
        said = [line for line in (done.stderr + done.stdout).splitlines() if line.startswith("ERROR")]
        logger.warning(
            "left the outputs of '%s' as its failed run wrote them (`dvc checkout %s` puts back the last good ones: "
            "%s)",
            stage,
            stage,
            said[0].removeprefix("ERROR: ") if said else f"it exited with {done.returncode}",
        )
        return
    logger.info("kept the last good outputs of '%s' (%s), as dvc.lock records them", stage, ", ".join(outputs))


def regate_experiment_verdict(params_file: Path) -> int:
    """Rerun the promote stage through DVC when the verdict in the workspace came from an experiment (after
    `dvc exp apply`): return its exit code, 0 when there was nothing to do."""
    from mlpipeline.graph import load
    from mlpipeline.io.files import read_json

    graph = load(Path("."), params_file)
    verdict_file = graph.output("promotion")
    if not verdict_file.is_file():
        return 0
    verdict = read_json(verdict_file, "promote")
    if verdict.get("mode") != "experiment":
        return 0
    gate_stage = graph.producer(verdict_file)
    assert gate_stage is not None
    logger.info(
        "the verdict in %s was made by experiment %s: gating v%s again as the workspace's own",
        verdict_file,
        verdict.get("experiment"),
        verdict.get("version"),
    )
    return _dvc("repro", "--force", "--single-item", gate_stage.name)


def _dvc(*args: str) -> int:
    from mlpipeline.settings import env_settings

    try:
        timeout = env_settings().mlpipeline_subprocess_timeout
        return subprocess.run([dvc_command(), *args], check=False, timeout=timeout).returncode
    except FileNotFoundError as exc:
        raise MlpipelineError("dvc not found: run `make setup` (or use `make run`)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MlpipelineError(f"dvc {args[0]} did not finish within {exc.timeout:.0f} s") from exc
