"""Scale: the pipeline on ``synthetic:<rows>`` from a thousand to ten million rows, stage by stage.

For each size, in a fresh clone of this repository (what a user gets) with these params:

    ingest.source: synthetic:<rows>    ingest.name: synthetic    validate.contract: contracts/synthetic.yaml
    preprocess.format: parquet         preprocess.max_train_rows: 1000000 (--max-train-rows)
    train.model: hist_gradient_boosting (train.max_iter: 100; early stopping on a validation share)

each stage runs as dvc.yaml runs it (``sh bin/stage <stage>``) and is measured with ``wait4``: wall time and the
stage process's own peak RSS. Then ``dvc commit`` stores every output in the DVC cache, timed, and the raw file is
checked to be linked, not copied, into the cache. Printed:

- per stage and size: wall time (s) and peak RSS (MB);
- per stage: the time-vs-rows exponent k of ``time - startup ~ rows^k``, fitted over the sizes from 1e5 rows up
  whose time above start-up is at least 0.25 s (startup = the stage's time at the smallest size: importing and
  process start, which does not grow with the data); ingest, validate and preprocess should be linear (k <= 1.1);
- peak RSS / in-memory data size at the largest size, where the data's size is the typed table in memory
  (polars/Arrow: float64 numbers, int64 class codes, text) as measured by ``polars.DataFrame.estimated_size``.

Training on more than ``max_train_rows`` rows trains on a stratified sample of that many rows; evaluate and
promote score the whole test part (20% of the rows). Not a test: no pass/fail.

    python benchmarks/scale.py [--rows 1e3,1e5,1e6,1e7] [--max-train-rows 1000000]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlpipeline.graph import load

REPO = Path(__file__).resolve().parents[1]
STAGES = tuple(stage for stage in load(REPO).project_stages if stage != "check-params")
LINEAR = STAGES[: STAGES.index("train")]  # the data stages: their time and memory must scale linearly


def env_for(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(root / "src")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching, as users run it
    return env


def measured(cmd: list[str], root: Path) -> tuple[float, float]:
    """Run ``cmd`` in ``root``: its wall time (s) and its own peak RSS (MB)."""
    log = root / ".bench.log"
    with log.open("ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=root, env=env_for(root), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {root}:\n{log.read_text()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def set_params(root: Path, values: dict[str, str]) -> None:
    """Set ``section.key`` values in params.yaml, keeping its comments."""
    params = root / "params.yaml"
    text = params.read_text()
    for dotted, value in values.items():
        section, key = dotted.split(".")
        pattern = rf"(^{section}:\n(?:[ #].*\n|\n)*?  {key}: )\S+"
        text, count = re.subn(pattern, lambda m, v=value: m.group(1) + v, text, count=1, flags=re.M)
        if not count:
            sys.exit(f"params.yaml has no {dotted}")
    params.write_text(text)


def data_size_mb(raw: Path, root: Path) -> float:
    """The raw table in memory, typed (what the stages work on), measured in a separate process."""
    code = (
        "import sys, polars as pl\n"
        "t = pl.read_csv(sys.argv[1], schema_overrides={'colour': pl.String, 'size': pl.String,"
        " 'target_name': pl.String})\n"
        "print(t.estimated_size() / 2**20)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(raw)], capture_output=True, text=True, check=True)
    return float(done.stdout)


def one_size(rows: int, max_train_rows: int, workdir: Path) -> dict[str, object]:
    root = workdir / f"rows-{rows}"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    set_params(
        root,
        {
            "ingest.source": f"synthetic:{rows}",
            "ingest.name": "synthetic",
            "validate.contract": "contracts/synthetic.yaml",
            "preprocess.format": "parquet",
            "preprocess.max_train_rows": str(max_train_rows),
            "train.model": "hist_gradient_boosting",
            "train.max_iter": "100",
        },
    )
    figures: dict[str, object] = {}
    for stage in ("check-params", *STAGES):
        figures[stage] = measured(["sh", "bin/stage", stage], root)
    raw = root / "data" / "raw" / "synthetic.csv"
    figures["dvc commit"] = measured([str(Path(sys.executable).parent / "dvc"), "commit", "-f", "-q"], root)
    figures["raw file linked into the cache"] = raw.stat().st_nlink > 1
    figures["raw file MB"] = raw.stat().st_size / 2**20
    figures["data MB in memory"] = data_size_mb(raw, root)
    return figures


def exponent(sizes: list[int], times: list[float]) -> float | None:
    """Least-squares slope of log(time - startup) against log(rows), over the sizes from 1e5 rows up whose time
    above start-up is at least a quarter of a second (below that, scheduling noise is the figure)."""
    startup = times[0]
    points = [
        (math.log(n), math.log(t - startup))
        for n, t in zip(sizes, times, strict=True)
        if n >= 1e5 and t > startup + 0.25
    ]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", default="1e3,1e5,1e6,1e7", help="comma-separated row counts, ascending")
    parser.add_argument("--max-train-rows", type=int, default=1_000_000, help="preprocess.max_train_rows")
    args = parser.parse_args()
    sizes = sorted(int(float(n)) for n in args.rows.split(","))
    print(f"scale benchmark: synthetic:<rows>, {os.cpu_count()} cores, max_train_rows {args.max_train_rows:_}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mlpipeline-scale-") as tmp:
        for rows in sizes:
            results[rows] = one_size(rows, args.max_train_rows, Path(tmp))
            took = sum(results[rows][s][0] for s in STAGES)  # type: ignore[index]
            print(f"  {rows:>12,} rows: {took:7.1f} s for the six stages", flush=True)

    print("\nwall time (s) / peak RSS (MB) per stage")
    print(f"{'stage':12s}" + "".join(f"{n:>20,}" for n in sizes) + "   exponent (>= 1e5 rows)")
    for stage in (*STAGES, "dvc commit"):
        cells = "".join(f"{results[n][stage][0]:9.2f} s {results[n][stage][1]:6.0f} MB" for n in sizes)  # type: ignore[index]
        k = exponent(sizes, [results[n][stage][0] for n in sizes])  # type: ignore[index]
        target = "   target <= 1.1" if stage in LINEAR else ""
        print(f"{stage:12s}{cells}   {'n/a' if k is None else f'{k:.2f}'}{target}")

    largest = results[sizes[-1]]
    data = float(largest["data MB in memory"])  # type: ignore[arg-type]
    print(f"\nat {sizes[-1]:,} rows: raw CSV {float(largest['raw file MB']):.0f} MB, typed in memory {data:.0f} MB")  # type: ignore[arg-type]
    for stage in STAGES:
        rss = largest[stage][1]  # type: ignore[index]
        print(f"  {stage:12s} peak RSS {rss:6.0f} MB = {rss / data:4.2f}x the data in memory"
              + ("   target <= 2x" if stage in LINEAR else ""))  # fmt: skip
    print(f"  training: hist_gradient_boosting on min(rows x 0.8, {args.max_train_rows:_}) rows, "
          f"{largest['train'][0]:.1f} s at {sizes[-1]:,} rows")  # type: ignore[index]  # fmt: skip
    linked = largest["raw file linked into the cache"]
    print(f"  DVC cache: raw file {'linked (stored once)' if linked else 'copied (no reflink/hardlink here)'}")


if __name__ == "__main__":
    main()
