"""Serving throughput and latency: `mlpipeline serve` against `mlflow models serve` on the same champion.

Both servers run on this machine, on loopback, serving `models:/<name>@champion` from the project's MLflow
store (run `make run` first). The same bounded load is sent to each: CLIENTS processes, each with one
keep-alive connection, sending requests back to back for DURATION seconds (and at most MAX_REQUESTS), for a
single-row and a 100-row body. Prints requests/s, p50 and p99 latency, and our ratios. Ours runs twice: with the
prediction log on (the default; written to a temporary folder, then every logged row is counted against the
rows sent) and off, so the log's cost shows as a p99 ratio. With ``--ab``, two more servers (log off) route
between two versions: an A/B split (half the requests to the challenger) and shadow mode (every request also
scored by the challenger in the background); the challenger alias is pointed at the champion itself (through
MLPIPELINE_SERVE_AB_ALIAS, nothing in the registry changes), so the figures are routing's own cost. Not a test.

    python benchmarks/serving.py [--duration 5] [--clients 2] [--ab]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 200_000
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
ROW = [5.9, 3.0, 5.1, 1.8]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            sys.exit(
                f"server on port {port} exited early ({proc.returncode}); is there a champion? (`make run`)\n{err}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"server on port {port} not ready after {timeout} s")


def client(port: int, path: str, body: bytes, duration: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json"}
    latencies, errors = [], 0
    end = time.perf_counter() + duration
    while time.perf_counter() < end and len(latencies) < MAX_REQUESTS:
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        errors += response.status != 200
    queue.put((latencies, errors))


def load(port: int, path: str, body: bytes, duration: float, clients: int) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=client, args=(port, path, body, duration, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    return {
        "rps": len(latencies) / duration,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "errors": errors,
        "requests": len(latencies),
    }


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per scenario")
    parser.add_argument("--clients", type=int, default=2, help="client processes (one connection each)")
    parser.add_argument("--model", default="iris-classifier")
    parser.add_argument(
        "--rounds", type=int, default=6, help="interleaved single-row rounds, log on then off, for the log's p99 cost"
    )
    parser.add_argument("--ab", action="store_true", help="also measure A/B (50%%) and shadow (100%%) routing")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` from PATH
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'mlflow.db'}")
    bodies = {
        "1 row": (ROW, 1),
        "100 rows": (ROW, 100),
    }
    ours_port, plain_port, theirs_port = free_port(), free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="mlpipeline-bench-log-"))
    ours_body = lambda row, n: json.dumps({"rows": [dict(zip(FEATURES, row, strict=True))] * n}).encode()  # noqa: E731
    servers = {
        "mlpipeline serve": (
            start(
                [sys.executable, "-m", "mlpipeline", "serve", "--port", str(ours_port)],
                {**env, "MLPIPELINE_PREDICTION_LOG_DIR": str(log_dir)},
            ),
            ours_port,
            "/predict",
            "/ready",
            ours_body,
        ),
        "  ... log off": (
            start(
                [sys.executable, "-m", "mlpipeline", "serve", "--port", str(plain_port)],
                {**env, "MLPIPELINE_PREDICTION_LOG_DIR": "off"},
            ),
            plain_port,
            "/predict",
            "/ready",
            ours_body,
        ),
        "mlflow models serve": (
            start(
                [
                    str(Path(sys.executable).parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    f"models:/{args.model}@champion",
                    "-p",
                    str(theirs_port),
                    "-h",
                    "127.0.0.1",
                    "--env-manager",
                    "local",
                ],
                {**env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"},
            ),
            theirs_port,
            "/invocations",
            "/ping",
            lambda row, n: json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row] * n}}).encode(),
        ),
    }
    if args.ab:  # the challenger is the champion's own version: what is measured is the routing, not a model
        for name, mode, share in (("  ... A/B 50%", "ab", "0.5"), ("  ... shadow 100%", "shadow", "1.0")):
            port = free_port()
            routed = {"MLPIPELINE_SERVE_AB_MODE": mode, "MLPIPELINE_SERVE_AB_SHARE": share}
            routed |= {"MLPIPELINE_SERVE_AB_ALIAS": "champion", "MLPIPELINE_PREDICTION_LOG_DIR": "off"}
            command = [sys.executable, "-m", "mlpipeline", "serve", "--port", str(port)]
            servers[name] = (start(command, {**env, **routed}), port, "/predict", "/ready", ours_body)
    results: dict[tuple[str, str], dict[str, float]] = {}
    paired: list[float] = []
    sent_rows = 0
    shadow: dict[str, int] = {}
    try:
        for name, (proc, port, path, ready, make_body) in servers.items():
            wait_ready(port, ready, proc)
            for label, (row, n) in bodies.items():
                body = make_body(row, n)
                warm = load(port, path, body, 1.0, 1)
                results[(name, label)] = load(port, path, body, args.duration, args.clients)
                if name == "mlpipeline serve":
                    sent_rows += n * int(warm["requests"] + results[(name, label)]["requests"])
        # One run of each is within this machine's noise (p99 moves by 30% between identical runs): the log's
        # cost is the median of interleaved rounds on the two servers, both running throughout.
        single = json.dumps({"rows": [dict(zip(FEATURES, ROW, strict=True))]}).encode()
        for _ in range(args.rounds):
            on = load(ours_port, "/predict", single, args.duration, args.clients)
            off = load(plain_port, "/predict", single, args.duration, args.clients)
            sent_rows += int(on["requests"])
            paired.append(on["p99_ms"] / off["p99_ms"])
        if args.ab:  # how much of the load the challenger kept up with in the background
            conn = http.client.HTTPConnection("127.0.0.1", servers["  ... shadow 100%"][1], timeout=10)
            conn.request("GET", "/ab")
            shadow = json.loads(conn.getresponse().read())["shadow"]
        stop(servers["mlpipeline serve"][0])  # a clean shutdown writes what is still queued
    finally:
        for proc, *_ in servers.values():
            stop(proc)
    lines = [line for f in log_dir.glob("predictions-*.jsonl") for line in f.open("rb")]
    logged = sum(len(json.loads(line)["body"]["rows"]) for line in lines)
    cores, clients = os.cpu_count(), args.clients
    print(f"serving benchmark: {cores} cores, {clients} clients x {args.duration:.0f} s per scenario, loopback")
    print(f"{'server':22s} {'body':9s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for (name, label), r in results.items():
        print(f"{name:22s} {label:9s} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7.0f}")
    for label in bodies:
        ours, theirs = results[("mlpipeline serve", label)], results[("mlflow models serve", label)]
        print(
            f"ratio ({label}): {ours['rps'] / theirs['rps']:.1f}x throughput, "
            f"p99 {theirs['p99_ms'] / ours['p99_ms']:.1f}x lower"
        )
    for label in bodies:
        logged_on, off = results[("mlpipeline serve", label)], results[("  ... log off", label)]
        print(f"prediction log ({label}): p99 {logged_on['p99_ms'] / off['p99_ms']:.2f}x the server without it")
    for name in ("  ... A/B 50%", "  ... shadow 100%"):
        for label in bodies if (name, "1 row") in results else ():
            routed, off = results[(name, label)], results[("  ... log off", label)]
            print(
                f"{name.strip()} ({label}): p99 {routed['p99_ms'] / off['p99_ms']:.2f}x, "
                f"throughput {routed['rps'] / off['rps']:.2f}x the champion-only server"
            )
    if args.ab:
        scored, dropped = shadow["scored"], shadow["dropped"]
        print(f"shadow: {scored:,} requests scored by the challenger, {dropped:,} dropped (its queue was full)")
    if paired:
        each = ", ".join(f"{ratio:.2f}" for ratio in paired)
        median = statistics.median(paired)
        print(f"prediction log (1 row, {len(paired)} interleaved rounds): median p99 {median:.2f}x ({each})")
    print(f"prediction log: {logged:,} rows logged of {sent_rows:,} sent ({sent_rows - logged:,} lost)")
    print("targets: >= 10x the throughput of mlflow models serve; p99 < 10 ms for single rows;")
    print("         prediction log: nothing lost, p99 within 1.10x of the server without it")


if __name__ == "__main__":
    main()
