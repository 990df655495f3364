"""What a restarted server pays at start to remember its earlier answers for POST /feedback.

Writes a prediction log of single-row Iris answers (as `mlpipeline serve` writes it) to a temporary folder, then
times reading the newest MLPIPELINE_SERVE_FEEDBACK_WINDOW rows back into the server's memory: our way (only
each line's answer is parsed, from the log's newest end) against the obvious one (every line parsed whole with
json.loads, as `read_log` does). Prints both and the ratio. Not a test.

    python benchmarks/feedback_memory.py [--rows 100000] [--lines 150000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mlpipeline.monitoring.predictions import PredictionLog, last_answers, read_log  # noqa: E402
from mlpipeline.serving.routing import RecentAnswers  # noqa: E402

BODY = {"rows": [{"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}]}
ANSWER = {
    "model": "iris-classifier",
    "version": "3",
    "request_id": "x",
    "predictions": [
        {"label": "setosa", "class_id": 0, "probabilities": {"setosa": 0.98, "versicolor": 0.01, "virginica": 0.01}}
    ],
}


def write_log(directory: Path, lines: int) -> None:
    log = PredictionLog(directory, queue_size=lines + 1)
    body, answer = json.dumps(BODY).encode(), json.dumps(ANSWER).encode()
    for i in range(lines):
        log.record(0.3, body, answer, 1, request_id=f"0123abcd-{i}")
    log.close(timeout=120)
    if log.stats.written != lines:
        sys.exit(f"the log wrote {log.stats.written} of {lines} rows")


def ours(directory: Path, rows: int) -> int:
    memory = RecentAnswers(rows)
    memory.restore(*last_answers(directory, rows))
    return len(memory)


def naive(directory: Path, rows: int) -> int:
    memory = RecentAnswers(rows)
    for row in read_log(directory):
        if row["row"] == 0:
            answer = json.dumps({"model": row["model"], "version": row["version"], "predictions": [row["output"]]})
            memory.add(row["request"], 1, row["role"], answer.encode())
    return len(memory)


def timed(fn: object, *args: object, repeat: int = 3) -> tuple[float, int]:
    times, kept = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        kept = fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times), kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="the feedback window (rows remembered)")
    parser.add_argument("--lines", type=int, default=150_000, help="single-row requests in the log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlpipeline-bench-") as tmp:
        directory = Path(tmp)
        write_log(directory, args.lines)
        size = sum(p.stat().st_size for p in directory.iterdir()) / 1e6
        print(f"log: {args.lines:,} single-row requests, {size:.0f} MB; window: {args.rows:,} rows")
        ours_s, ours_kept = timed(ours, directory, args.rows)
        naive_s, naive_kept = timed(naive, directory, args.rows)
        if ours_kept != naive_kept:
            sys.exit(f"remembered {ours_kept} answers, the naive way {naive_kept}")
        print(f"ours  (answers only, newest end): {ours_s:.2f} s for {ours_kept:,} answers")
        print(f"naive (every line parsed whole):  {naive_s:.2f} s")
        print(f"ratio: {ours_s / naive_s:.2f}x")


if __name__ == "__main__":
    main()
