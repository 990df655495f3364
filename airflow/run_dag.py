"""Trigger the mlpipeline DAG at a commit and wait for it, printing each task's state as it changes.

Runs where Airflow's metadata database is reachable (`make airflow-run` runs it in the scheduler's container):

    python airflow/run_dag.py --commit <sha> [--timeout 3600]

Exits 0 when the run succeeds, 1 when it fails (naming the failed tasks; their logs have the stage's error),
2 when it cannot start or times out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

DAG_ID = "mlpipeline"
DONE = ("success", "failed")


def states(run_id: str) -> dict[str, str]:
    from airflow.models.dagrun import DagRun

    (run,) = DagRun.find(dag_id=DAG_ID, run_id=run_id)
    return {"run": str(run.state), **{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}


def wait_for_dag(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(["airflow", "dags", "list", "-o", "plain"], capture_output=True, text=True, check=False)
        if DAG_ID in listed.stdout:
            return
        if time.monotonic() > deadline:
            sys.exit(
                f"error: the DAG processor has not parsed the {DAG_ID} DAG after {timeout:.0f} s "
                "(see `airflow dags list-import-errors`)"
            )
        time.sleep(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="", help="the commit to run (default: each workspace as it is)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run")
    args = parser.parse_args()
    wait_for_dag(min(args.timeout, 300))
    run_id = f"manual__mlpipeline_{time.strftime('%Y%m%dT%H%M%S')}_{(args.commit or 'workspace')[:12]}"
    conf = json.dumps({"commit": args.commit})
    started = subprocess.run(
        ["airflow", "dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", conf], capture_output=True, text=True
    )
    if started.returncode != 0:
        print(started.stdout + started.stderr, file=sys.stderr)
        print(f"error: could not trigger {DAG_ID}", file=sys.stderr)
        return 2
    print(f"triggered {DAG_ID} run {run_id} at commit {args.commit or '(workspace as is)'}", flush=True)
    deadline = time.monotonic() + args.timeout
    shown: dict[str, str] = {}
    start = time.monotonic()
    while True:
        now = states(run_id)
        for task, state in now.items():
            if task != "run" and shown.get(task) != state:
                print(f"{time.monotonic() - start:7.1f}s  {task:<14} {state}", flush=True)
        shown = now
        if now["run"] in DONE:
            break
        if time.monotonic() > deadline:
            print(f"error: run {run_id} not finished after {args.timeout:.0f} s (still {now['run']})", file=sys.stderr)
            return 2
        time.sleep(2)
    failed = sorted(task for task, state in now.items() if task != "run" and state == "failed")
    if now["run"] != "success":
        print(
            f"run {run_id} FAILED at {', '.join(failed) or '?'}: see the task log for the stage's error",
            file=sys.stderr,
        )
        return 1
    print(f"run {run_id} succeeded in {time.monotonic() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
