"""Pipeline wall times on this machine: cold full run, no-op rerun, a train-param change; local and docker.

Runs the committed pipeline in a fresh clone of this repository (so it measures what a user gets) and prints
each figure with its ratio to the cold run, which is what rerunning every stage without DVC's cache costs.
Also prints each stage's own process time, to show where a cold run goes, and, when the images are built
(`make build`), the same in docker mode with the per-stage container overhead against in-process runs.
Not a test: no pass/fail.

    python benchmarks/pipeline.py [--repeat N] [--no-docker]
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
# Each stage as dvc.yaml runs it (its cmd), so the figures are those of a real rerun and cannot drift from it.
STAGES = ("ingest", "validate", "preprocess", "train", "evaluate", "promote")


def env_for(root: Path, runtime: str = "local") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["MLPIPELINE_RUNTIME"] = runtime
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(root / "src")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching, as users run it
    return env


def timed(cmd: list[str], root: Path, runtime: str = "local") -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env_for(root, runtime), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def set_n_estimators(root: Path, value: int) -> None:
    params = root / "params.yaml"
    params.write_text(re.sub(r"n_estimators: \d+", f"n_estimators: {value}", params.read_text()))


def once(workdir: Path, runtime: str) -> dict[str, float]:
    root = workdir / f"clone-{runtime}"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    figures: dict[str, float] = {}
    figures["cold full run (dvc repro)"], _ = timed(["dvc", "repro"], root, runtime)
    figures["no-op rerun"], out = timed(["dvc", "repro"], root, runtime)
    assert "Running stage" not in out, out
    set_n_estimators(root, 50)
    figures["train param change (train, evaluate, promote)"], _ = timed(["dvc", "repro"], root, runtime)
    for stage in STAGES:
        figures[f"  stage process: {stage}"], _ = timed(["sh", "bin/stage", stage], root, runtime)
    return figures


def images_built() -> bool:
    sys.path.insert(0, str(REPO / "src"))
    from mlpipeline.runtimes.docker import image_name

    name = image_name("train", REPO)
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0


def report(title: str, runs: list[dict[str, float]]) -> dict[str, float]:
    cold = statistics.median(r["cold full run (dvc repro)"] for r in runs)
    print(f"\n{title}")
    medians = {}
    for name in runs[0]:
        medians[name] = statistics.median(r[name] for r in runs)
        print(f"{name:48s} {medians[name]:7.2f} s   {medians[name] / cold:6.1%} of a cold run")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="repeat each measurement N times (median)")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker-mode figures")
    args = parser.parse_args()
    print(f"pipeline benchmark, {os.cpu_count()} cores, median of {args.repeat}")
    runtimes = ["local"] + ([] if args.no_docker else ["docker"])
    if "docker" in runtimes and not images_built():
        print("docker mode: skipped (no engine or images not built: make build)")
        runtimes.remove("docker")
    results = {}
    for runtime in runtimes:
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-") as tmp:
                runs.append(once(Path(tmp), runtime))
        results[runtime] = report(f"runtime: {runtime}", runs)
    if "docker" in results:
        print("\nper-stage container overhead (docker - local)")
        for stage in STAGES:
            key = f"  stage process: {stage}"
            extra = results["docker"][key] - results["local"][key]
            print(f"  {stage:12s} {extra:+6.2f} s   ({results['docker'][key] / results['local'][key]:.2f}x)")
    print("\ntargets: no-op < 1 s; cold run well under 10 s; container overhead < 1 s per stage")


if __name__ == "__main__":
    main()
