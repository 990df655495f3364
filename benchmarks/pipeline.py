"""Pipeline wall times on this machine: cold full run, no-op rerun, a train-param change.

Runs the committed pipeline in a fresh clone of this repository (so it measures what a user gets) and prints
each figure with its ratio to the cold run, which is what rerunning every stage without DVC's cache costs.
Also prints each stage's own process time, to show where a cold run goes. Not a test: no pass/fail.

    python benchmarks/pipeline.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE_CMDS = {
    "ingest": ["ingest"],
    "validate": ["validate", "--raw", "data/raw/iris.csv"],
    "preprocess": ["preprocess", "--raw", "data/raw/iris.csv"],
    "train": ["train"],
    "evaluate": ["evaluate"],
}


def env_for(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(root / "src")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching, as users run it
    return env


def timed(cmd: list[str], root: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env_for(root), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def set_n_estimators(root: Path, value: int) -> None:
    params = root / "params.yaml"
    params.write_text(re.sub(r"n_estimators: \d+", f"n_estimators: {value}", params.read_text()))


def once(workdir: Path) -> dict[str, float]:
    root = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    figures: dict[str, float] = {}
    figures["cold full run (dvc repro)"], _ = timed(["dvc", "repro"], root)
    figures["no-op rerun"], out = timed(["dvc", "repro"], root)
    assert "Running stage" not in out, out
    set_n_estimators(root, 50)
    figures["train param change (train + evaluate)"], _ = timed(["dvc", "repro"], root)
    for stage, args in STAGE_CMDS.items():
        figures[f"  stage process: {stage}"], _ = timed([sys.executable, "-m", "mlpipeline", *args], root)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="repeat the whole measurement N times (median)")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-") as tmp:
            runs.append(once(Path(tmp)))
    cold = statistics.median(r["cold full run (dvc repro)"] for r in runs)
    print(f"pipeline benchmark, {os.cpu_count()} cores, median of {args.repeat}")
    for name in runs[0]:
        value = statistics.median(r[name] for r in runs)
        print(f"{name:42s} {value:7.2f} s   {value / cold:6.1%} of a cold run")
    print("targets: no-op < 1 s; cold run well under 10 s")


if __name__ == "__main__":
    main()
