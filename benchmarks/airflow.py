"""Airflow's cost: the DAG run (`airflow dags test`, local operator) against `dvc repro` on the same commit.

Each side starts from a fresh clone of this repository with its own local MLflow store, so both run every stage
cold; then both run again with nothing changed. The difference divided by the number of tasks is Airflow's
overhead per task (its task runner and, per task, `mlpipeline task`: checkout, DVC's status of the upstream
stages, the workspace lock). Needs `make airflow-setup`. Not a test.

    python benchmarks/airflow.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = REPO / "airflow" / ".venv" / "bin"
PROJECT_BIN = Path(sys.executable).parent


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching, as users run it
    env.pop("PYTHONPATH", None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    if not (AIRFLOW_BIN / "airflow").exists():
        sys.exit("Airflow's environment is missing: run `make airflow-setup`")
    stages = [stage["name"] for stage in json.loads((REPO / "airflow/dags/pipeline.json").read_text())["stages"]]
    with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-airflow-") as tmp:
        base = Path(tmp)
        for name in ("dvc", "airflow"):
            subprocess.run(["git", "clone", "-q", str(REPO), str(base / name)], check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=base / "airflow", capture_output=True, text=True, check=True
        ).stdout.strip()

        local = {**clean_env(), "PATH": f"{PROJECT_BIN}{os.pathsep}{os.environ['PATH']}"}
        local["PYTHONPATH"] = str(base / "dvc" / "src")
        figures = {"dvc repro, cold": timed(["dvc", "repro"], base / "dvc", local)}
        figures["dvc repro, nothing changed"] = timed(["dvc", "repro"], base / "dvc", local)

        workspace = base / "airflow"
        env = {
            **clean_env(),
            "AIRFLOW_HOME": str(base / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(workspace / "airflow" / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "MLPIPELINE_WORKSPACE": str(workspace),
            "MLPIPELINE_PYTHON": sys.executable,
        }
        airflow = str(AIRFLOW_BIN / "airflow")
        timed([airflow, "db", "migrate"], workspace, env)
        run = [airflow, "dags", "test", "mlpipeline", "--conf", json.dumps({"commit": commit})]
        figures["airflow dags test, cold"] = timed(run, workspace, env)
        figures["airflow dags test, nothing changed"] = timed(run, workspace, env)

    print(f"airflow benchmark, {os.cpu_count()} cores, {len(stages)} tasks, local operator")
    for name, seconds in figures.items():
        print(f"{name:40s} {seconds:7.2f} s")
    for kind in ("cold", "nothing changed"):
        extra = figures[f"airflow dags test, {kind}"] - figures[f"dvc repro, {kind}"]
        print(
            f"overhead, {kind:16s}       {extra:+7.2f} s  ({extra / len(stages):+.2f} s per task, "
            f"{figures[f'airflow dags test, {kind}'] / figures[f'dvc repro, {kind}']:.1f}x)"
        )
    print("target: under 2 s of overhead per task (an Airflow task is a process; each runs DVC once)")


if __name__ == "__main__":
    main()
