"""Pipeline wall times on this machine against a naive baseline: cold run, no-op, a train-param change, a sweep.

Runs the committed pipeline in a fresh clone of this repository (so it measures what a user gets), three ways:

- ``worker``: with the pre-imported stage worker (``src/mlpipeline/runtimes/zygote.py``; its start is part of the
  cold run), as ``make sweep`` and the benchmark use it;
- ``plain``: every stage its own fresh process (what ``dvc repro`` does when no worker runs);
- ``naive``: the baseline in ``benchmarks/naive/``, in its own temp project (see :data:`NAIVE`).

Each figure is printed with our/naive ratio and the issue's target. Then a sweep of ten experiments, as
``make sweep`` runs it (``dvc exp run --queue -S train.n_estimators=110,120,...,200``, then ``dvc exp run
--run-all -j 2``, stages forked from the worker), against ten naive runs, measured: a naive user sweeps by
editing params.yaml and running ``dvc repro`` ten times (and against ten naive cold runs, the issue's basis). Also
each stage's own process time, and, when the images are built (``make build``), docker mode's per-stage
container overhead. Timings on a shared 2-core machine are noisy: use ``--repeat`` (medians). Not a test.

    python benchmarks/pipeline.py [--repeat N] [--no-docker] [--no-sweep] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlpipeline.graph import load

REPO = Path(__file__).resolve().parents[1]
NAIVE_DIR = Path(__file__).resolve().parent / "naive"
ZYGOTE = Path("src/mlpipeline/runtimes/zygote.py")
# Each stage as dvc.yaml runs it (its cmd), so the figures are those of a real rerun and cannot drift from it.
STAGES = tuple(stage for stage in load(REPO).project_stages if stage != "check-params")
SWEEP = tuple(range(110, 210, 10))  # ten n_estimators values, none the committed one

NAIVE = """The naive baseline: the reference's style, faithfully, on the same Iris data.

Like the reference: one script per stage (src/data_ingestion.py, data_validation.py, preprocess.py, train.py,
evaluate.py), each importing pandas, scikit-learn, MLflow, matplotlib and yaml at the top whether it uses them or
not, run by `dvc repro` from its own dvc.yaml (deps, params, outs); the same work: Iris to CSV, a validation report
(columns, nulls, labels, rows per class), a stratified 80/20 split (seed 42), a random forest with our params
(100 trees, depth 5, seed 42), test accuracy/precision/recall/F1 and a confusion matrix (JSON and PNG), MLflow
in a local SQLite store (params, metrics, the model with `mlflow.sklearn.log_model` and no pip_requirements, so
MLflow infers them; registered as iris-classifier; evaluate loads it back from MLflow and logs to the same run).
It only adds what MLflow 3 demands to save a forest at all (skops_trusted_types), and MLflow's telemetry is off
as for ours, so no network wait is counted against it.

What it leaves out (all of which ours does, so the comparison favours it): a promotion gate stage (ours re-scores
the champion), a data contract beyond the checks above, canonical byte-identical model files, lineage tags,
per-stage code and environment deps in dvc.yaml, leases for crashed runs, the per-class report and CSV plot.
"""


def env_for(root: Path, runtime: str = "local") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["MLPIPELINE_RUNTIME"] = runtime
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(root / "src")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching, as users run it
    return env


def naive_env(root: Path) -> dict[str, str]:
    env = env_for(root)
    env.pop("PYTHONPATH")
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")  # no network wait counted against it
    return env


def timed(cmd: list[str], root: Path, runtime: str = "local", env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env or env_for(root, runtime), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def set_n_estimators(root: Path, value: int) -> None:
    params = root / "params.yaml"
    params.write_text(re.sub(r"n_estimators: \d+", f"n_estimators: {value}", params.read_text(), count=1))


WORKTREE = False  # --worktree: clone the working tree (uncommitted edits included) instead of HEAD


def clone(root: Path) -> None:
    """A fresh clone of HEAD; with --worktree, plus the uncommitted and new files, committed in the clone."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    if not WORKTREE:
        return
    listed = subprocess.run(
        ["git", "ls-files", "-mo", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (REPO / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel)
        else:
            (root / rel).unlink(missing_ok=True)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "working tree"], cwd=root, check=True)


def worker(root: Path, command: str) -> float:
    """Start or stop the project's stage worker; return the seconds it took (start returns at once)."""
    return timed([sys.executable, "-P", str(ZYGOTE), command], root)[0]


def once(workdir: Path, runtime: str, with_worker: bool = False) -> dict[str, float]:
    root = workdir / f"clone-{runtime}{'-worker' if with_worker else ''}"
    clone(root)
    figures: dict[str, float] = {}
    started = worker(root, "start") if with_worker else 0.0
    cold, _ = timed(["dvc", "repro"], root, runtime)
    figures["cold full run"] = started + cold
    figures["no-op rerun"], out = timed(["dvc", "repro"], root, runtime)
    assert "Running stage" not in out, out
    set_n_estimators(root, 50)
    figures["train param change"], _ = timed(["dvc", "repro"], root, runtime)
    for stage in STAGES:
        figures[f"  stage process: {stage}"], _ = timed(["sh", "bin/stage", stage], root, runtime)
    if with_worker:
        worker(root, "stop")
    return figures


def naive_project(workdir: Path) -> Path:
    root = workdir / "naive"
    shutil.copytree(NAIVE_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "README.md"))
    env = naive_env(root)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(cmd, cwd=root, env=env, check=True)
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "naive"],
        cwd=root,
        env=env,
        check=True,
    )
    return root


def once_naive(workdir: Path) -> dict[str, float]:
    root = naive_project(workdir)
    env = naive_env(root)
    figures: dict[str, float] = {}
    figures["cold full run"], _ = timed(["dvc", "repro"], root, env=env)
    figures["no-op rerun"], out = timed(["dvc", "repro"], root, env=env)
    assert "Running stage" not in out, out
    set_n_estimators(root, 50)
    figures["train param change"], _ = timed(["dvc", "repro"], root, env=env)
    for stage in load(NAIVE_DIR).names:  # one script per stage, src/<stage>.py
        figures[f"  stage process: {stage}"], _ = timed(["python", f"src/{stage}.py"], root, env=env)
    return figures


def sweep_ours(workdir: Path, jobs: int) -> float:
    """Ten queued experiments run by the queue, stages forked from the worker (what `make sweep` does)."""
    root = workdir / "sweep"
    clone(root)
    worker(root, "start")
    timed(["dvc", "repro"], root)  # the baseline the experiments start from
    start = time.perf_counter()
    grid = ",".join(str(n) for n in SWEEP)  # one command queues all ten (DVC's Hydra sweep syntax)
    timed(["dvc", "exp", "run", "--queue", "-S", f"train.n_estimators={grid}"], root)
    timed(["dvc", "exp", "run", "--run-all", "-j", str(jobs)], root)
    elapsed = time.perf_counter() - start
    _, listed = timed(["dvc", "exp", "ls", "--name-only"], root)
    worker(root, "stop")
    if len(listed.split()) < len(SWEEP):
        sys.exit(f"sweep: only {len(listed.split())} of {len(SWEEP)} experiments finished:\n{listed}")
    return elapsed


def sweep_naive(workdir: Path) -> float:
    """Ten naive runs as a naive user sweeps: edit params.yaml, `dvc repro`, ten times."""
    root = naive_project(workdir)
    env = naive_env(root)
    timed(["dvc", "repro"], root, env=env)
    start = time.perf_counter()
    for n in SWEEP:
        set_n_estimators(root, n)
        timed(["dvc", "repro"], root, env=env)
    return time.perf_counter() - start


def images_built() -> bool:
    sys.path.insert(0, str(REPO / "src"))
    from mlpipeline.runtimes.docker import image_name

    name = image_name("train", REPO)
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0


def medians(repeat: int, run: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-") as tmp:
            runs.append(run(Path(tmp)))
    return {name: statistics.median(r[name] for r in runs) for name in runs[0]}


TARGETS = {"cold full run": 0.5, "train param change": 0.3}


def report(ours: dict[str, dict[str, float]], naive: dict[str, float]) -> None:
    print(f"\n{'':34s} {'worker':>8s} {'plain':>8s} {'naive':>8s}   {'worker/naive':>12s} {'plain/naive':>11s}  target")
    for name in ("cold full run", "no-op rerun", "train param change"):
        w, p, n = ours["worker"][name], ours["plain"][name], naive[name]
        target = f"<= {TARGETS[name]:.2f}x" if name in TARGETS else ""
        print(f"{name:34s} {w:7.2f}s {p:7.2f}s {n:7.2f}s   {w / n:11.2f}x {p / n:10.2f}x  {target}")
    print("\nstage processes (sh bin/stage <stage>; naive: python src/<script>.py)")
    for name in ours["plain"]:
        if name.startswith("  stage"):
            print(f"{name:34s} {ours['worker'][name]:7.2f}s {ours['plain'][name]:7.2f}s")
    for name in naive:
        if name.startswith("  stage"):
            print(f"{name:34s} {'':8s} {'':8s} {naive[name]:7.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="repeat each measurement N times (median)")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker-mode figures")
    parser.add_argument("--no-sweep", action="store_true", help="skip the ten-experiment sweep")
    parser.add_argument("--jobs", type=int, default=2, help="experiments the queue runs at a time in the sweep")
    parser.add_argument("--worktree", action="store_true", help="measure the working tree, not HEAD")
    args = parser.parse_args()
    global WORKTREE
    WORKTREE = args.worktree
    print(f"pipeline benchmark, {os.cpu_count()} cores, median of {args.repeat}; naive = benchmarks/naive/")
    ours = {
        "worker": medians(args.repeat, lambda tmp: once(tmp, "local", with_worker=True)),
        "plain": medians(args.repeat, lambda tmp: once(tmp, "local")),
    }
    naive = medians(args.repeat, once_naive)
    report(ours, naive)
    if not args.no_sweep:
        with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-") as tmp:
            mine = sweep_ours(Path(tmp), args.jobs)
            theirs = sweep_naive(Path(tmp))
        ten_cold = 10 * naive["cold full run"]
        print(f"\nsweep of {len(SWEEP)} experiments: queue + `dvc exp run --run-all -j {args.jobs}`, with the worker")
        rows = (
            ("ours", mine, ""),
            ("naive: edit params, dvc repro (x10)", theirs, f"ours/naive {mine / theirs:5.2f}x  target <= 0.25x"),
            ("naive: ten full runs (10 x cold)", ten_cold, f"ours/naive {mine / ten_cold:5.2f}x  target <= 0.25x"),
        )
        for name, seconds, ratio in rows:
            print(f"  {name:36s} {seconds:7.2f}s   {ratio}")
    if not args.no_docker:
        if images_built():
            docker = medians(args.repeat, lambda tmp: once(tmp, "docker"))
            print("\nper-stage container overhead (docker - plain local)")
            for stage in STAGES:
                key = f"  stage process: {stage}"
                extra = docker[key] - ours["plain"][key]
                print(f"  {stage:12s} {extra:+6.2f} s   ({docker[key] / ours['plain'][key]:.2f}x)")
        else:
            print("\ndocker mode: skipped (no engine or images not built: make build)")
    print("\ntimings on a shared machine are noisy: compare ratios measured in the same run, and use --repeat")


if __name__ == "__main__":
    main()
