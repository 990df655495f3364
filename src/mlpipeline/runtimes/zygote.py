"""A pre-imported stage worker: one long-lived process that has imported the third-party libraries the stages
use, and forks a fresh child per stage, so a stage starts in milliseconds instead of seconds of imports.

Most of a stage process's time is importing scikit-learn, MLflow's SQL store and skops (seconds each stage,
while the work itself takes a fraction of one). The worker ("zygote") pays that once. It never imports
mlpipeline itself: each child imports the project's modules from the calling checkout's ``src/``, so an edited
module is always what runs, exactly as in a plain ``python -m mlpipeline.stages`` process.

    python -P src/mlpipeline/runtimes/zygote.py start     # daemon; bin/stage uses it while it runs
    python -P src/mlpipeline/runtimes/zygote.py stop
    python -P src/mlpipeline/runtimes/zygote.py status

``bin/stage`` runs this file as the *client* when the socket exists. A client sends the worker its argv, cwd,
environment, umask and stdin/stdout/stderr (the descriptors themselves), and exits with the stage's exit code
(or dies of the same signal). When no worker answers, or the worker cannot stand in for a fresh process (another
Python, an environment variable that libraries read at import time differs, the installed packages changed
since it started), the client ``exec``s a plain ``python -m mlpipeline.stages`` instead: the worker is only ever
a shortcut, never a requirement.

Safety:

- The socket is ``.mlpipeline/zygote/zygote.sock`` in the project (``$DVC_ROOT``, also for a queued experiment's
  temporary copy), in a directory only the user can enter (0700), and every connection's peer uid is checked
  (``SO_PEERCRED``) on both sides. Never a TCP port.
- Signals the client gets (Ctrl-C, SIGTERM from ``dvc queue kill``...) are passed to the stage's process group.
  If the client disappears (killed), the stage is killed; if the stage's monitor dies, the stage dies with it
  (``PR_SET_PDEATHSIG``). A stage that crashes or is killed gives the same exit status as a plain process, and,
  since stages write outputs atomically and hold MLflow leases by file locks, the same files.
- The worker exits after ``--idle`` seconds without a request (default 900), and at once when the packages in
  its environment change.

Each connection is served by a *monitor* forked from the worker; the monitor forks the stage child and waits
for it, so the worker itself never waits on a stage and serves parallel ones (``dvc queue start -j 2``).
Only the standard library is imported at the top of this file: the client starts in ~20 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    # Run as a script: its own folder (runtimes/: docker.py, airflow.py) must not shadow real packages.
    del sys.path[0]

PROTOCOL = 1
SOCKET_DIR = Path(".mlpipeline/zygote")
SOCKET_NAME = "zygote.sock"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL
TICK = 0.25  # seconds between the worker's checks for stop, idleness and changed packages
# Read by libraries (or Python) when they are imported, i.e. in the worker, not in the child: a client whose
# values differ runs a plain process instead.
IMPORT_TIME_ENV = (
    "PYTHONHOME",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONWARNINGS",
    "PYTHONOPTIMIZE",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MPLBACKEND",
    "MPLCONFIGDIR",
    "SKLEARN_SITE_JOBLIB",
    "SCIPY_ARRAY_API",
    "POLARS_MAX_THREADS",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
)
# What the stages import from outside the project (the worker imports whichever are installed). A module left
# out here is still imported by the child that needs it, only not in advance.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "polars",
    "yaml",
    "pydantic",
    "pydantic_settings",
    "sklearn.datasets",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.preprocessing",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "skops.io",
    "mlflow",
    "mlflow.artifacts",
    "mlflow.entities",
    "mlflow.exceptions",
    "mlflow.models",
    "mlflow.sklearn",
    "mlflow.tracking",
    "mlflow.types",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.artifact.local_artifact_repo",
    "matplotlib.pyplot",
    "rich.logging",
)


def project_root(environ: dict[str, str] | None = None, cwd: str | None = None) -> Path:
    """The project whose worker a stage uses: DVC's root (the workspace, also for an experiment's copy)."""
    env = os.environ if environ is None else environ
    return Path(env.get("DVC_ROOT") or cwd or os.getcwd())


def socket_path(root: Path) -> Path:
    """``<root>/.mlpipeline/zygote/zygote.sock`` (bin/stage spells the same path)."""
    return root / SOCKET_DIR / SOCKET_NAME


# ---- wire format: newline-terminated JSON messages, the request carrying three descriptors ----


def _send(conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = (json.dumps(message) + "\n").encode()
    if fds:
        socket.send_fds(conn, [data], fds)
    else:
        conn.sendall(data)


class _Reader:
    """Reads newline-terminated JSON messages (and, with the first, any descriptors sent along)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""
        self.fds: list[int] = []

    def read(self, with_fds: int = 0) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            if with_fds and not self.fds:
                data, fds, _, _ = socket.recv_fds(self.conn, 65536, with_fds)
                self.fds.extend(fds)
            else:
                data = self.conn.recv(65536)
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fingerprint() -> list[list[Any]]:
    """What changes when packages are installed, removed or upgraded: the site-packages folders' mtimes."""
    seen = []
    for entry in sys.path:
        if entry.endswith("site-packages") and os.path.isdir(entry):
            st = os.stat(entry)
            seen.append([entry, st.st_mtime_ns, st.st_ino])
    return seen


def _identity(python: str) -> list[str | None]:
    """The interpreter and the virtual environment ``python`` runs in (however its path is spelt: python,
    python3, a symlink). Computed from the file system, not from ``sys.prefix``: the client runs without site."""
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    return [os.path.realpath(python), venv if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) else None]


# ---- the client (what bin/stage runs) ----


def _plain(python: str, argv: list[str]) -> None:
    """Run the stage as a plain process (this process becomes it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, "-m", "mlpipeline.stages", *argv])


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def client(sock_path: str, python: str, argv: list[str]) -> int:
    """Run a stage in the worker at ``sock_path``; fall back to a plain process when it cannot."""
    # Held until the stage's pid is known, then passed on: a Ctrl-C right after the start is not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(sock_path)
        if _peer_uid(conn) != os.getuid():
            raise OSError("worker belongs to another user")
        request = {
            "protocol": PROTOCOL,
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "umask": _umask(),
            "python": _identity(python),
        }
        _send(conn, request, [0, 1, 2])
        reader = _Reader(conn)
        started = reader.read()
    except OSError:
        started = None
    if not started or "pid" not in started:
        conn.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        _plain(python, argv)  # no worker, or one that cannot stand in for a fresh process: nothing ran yet

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            _send(conn, {"signal": signum})

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    try:
        done = reader.read()
    except OSError:
        done = None
    if done is None:
        print(f"ERROR stage {' '.join(argv)}: the stage worker died mid-stage", file=sys.stderr)
        return 70
    if "signal" in done:
        died_of = int(done["signal"])
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            signal.signal(died_of, signal.SIG_DFL)
        os.kill(os.getpid(), died_of)  # die of the same signal, as the plain process would have
        return 128 + died_of
    return int(done["exit"])


# ---- the worker ----


class _Worker:
    def __init__(self, path: Path, idle: float, preload: tuple[str, ...] = PRELOAD) -> None:
        self.path, self.idle, self.modules = path, idle, preload
        self.fingerprint: list[list[Any]] = []
        self.env = dict(os.environ)
        self.listener: socket.socket | None = None
        self.inode = 0
        self.stopping = False

    def bind(self) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        if folder.stat().st_uid != os.getuid():
            raise SystemExit(f"{folder} belongs to another user")
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(16)
        self.listener, self.inode = listener, os.stat(self.path).st_ino

    def preload(self) -> None:
        import importlib

        os.environ.setdefault("MPLBACKEND", "Agg")  # pyplot must not look for a display; evaluate uses Agg too
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # an optional library: the child imports it itself if it needs it
                print(f"zygote: not preloaded {name}: {exc}", file=sys.stderr)
        os.environ.clear()
        os.environ.update(self.env)
        import gc

        gc.collect()
        gc.freeze()  # the preloaded objects are never collected, so children do not copy their pages to scan them
        if any(name == "mlpipeline" or name.startswith("mlpipeline.") for name in sys.modules):
            raise SystemExit("zygote: a preloaded library imported mlpipeline; refusing to serve stale code")
        self.fingerprint = _fingerprint()
        print(f"zygote: ready, pid {os.getpid()}, {len(sys.modules)} modules", file=sys.stderr, flush=True)

    def serve(self) -> dict[str, Any] | None:
        """Accept connections until idle or stale; return a request only in a forked stage child."""
        assert self.listener is not None
        self.listener.settimeout(TICK)
        idle = 0.0
        while not self.stopping:
            _reap()
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                idle += TICK
                if idle >= self.idle or _fingerprint() != self.fingerprint or not self._owns_socket():
                    return None
                continue
            idle = 0.0
            if _fingerprint() != self.fingerprint:
                conn.close()  # packages changed: the client runs a plain process; we go away
                return None
            pid = os.fork()
            if pid == 0:
                self.listener.close()
                conn.settimeout(None)
                return _monitor(conn, self.env)
            conn.close()
        return None

    def _owns_socket(self) -> bool:
        """Whether the socket file is still ours (not removed, nor replaced by another worker's)."""
        try:
            return os.stat(self.path).st_ino == self.inode
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        if self._owns_socket():
            self.path.unlink(missing_ok=True)
            (self.path.parent / "pid").unlink(missing_ok=True)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _refusal(request: dict[str, Any], env: dict[str, str]) -> str | None:
    """Why this worker cannot stand in for a fresh process of the client's (None: it can)."""
    if request.get("protocol") != PROTOCOL:
        return "another protocol version"
    if request.get("python") != _identity(sys.executable):
        return f"another Python or environment ({request.get('python')})"
    theirs = request.get("env", {})
    for name in IMPORT_TIME_ENV:
        if theirs.get(name) != env.get(name):
            return f"{name} differs"
    return None


def _monitor(conn: socket.socket, env: dict[str, str]) -> dict[str, Any] | None:
    """In a fork of the worker: check the request, fork the stage child, pass signals, report how it ended."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    reader = _Reader(conn)
    try:
        if _peer_uid(conn) != os.getuid():
            os._exit(0)
        request = reader.read(with_fds=3)
    except (OSError, ValueError):
        os._exit(0)
    if request is None or len(reader.fds) != 3 or _refusal(request, env) is not None:
        os._exit(0)  # closing without a pid tells the client to run a plain process
    monitor = os.getpid()
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        _die_with_parent()
        if os.getppid() != monitor:
            os._exit(1)
        conn.close()
        request["fds"] = reader.fds
        return request
    with contextlib.suppress(OSError):  # the child may have done it first (or already exited)
        os.setpgid(child, child)
    for fd in reader.fds:
        os.close(fd)
    _send(conn, {"pid": child})
    print(f"zygote: {' '.join(request['argv'])} in {request['cwd']}: pid {child}", file=sys.stderr, flush=True)
    os._exit(_watch(conn, reader, child))


def _die_with_parent() -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _watch(conn: socket.socket, reader: _Reader, child: int) -> int:
    import select

    try:
        pidfd = os.pidfd_open(child)
    except (AttributeError, OSError):
        pidfd = -1
    client_gone = False
    while True:
        watched = [pidfd] if pidfd >= 0 else []
        if not client_gone:
            watched.append(conn.fileno())
        ready, _, _ = select.select(watched, [], [], None if pidfd >= 0 else 0.02)
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            break
        if conn.fileno() in ready:
            try:
                message = reader.read()
            except (OSError, ValueError):
                message = None
            if message is None:  # the client was killed: so is its stage, as a killed plain process would be
                client_gone = True
                _signal_group(child, signal.SIGKILL)
            elif "signal" in message:
                _signal_group(child, int(message["signal"]))
    if client_gone:
        return 0
    if os.WIFSIGNALED(status):
        _send(conn, {"signal": os.WTERMSIG(status)})
    else:
        _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    return 0


def _signal_group(child: int, signum: int) -> None:
    try:
        os.killpg(child, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(child, signum)


def _become_stage(request: dict[str, Any]) -> None:
    """In the stage child: take the client's descriptors, cwd, environment, umask, argv and import path, then
    run ``python -m mlpipeline.stages`` as a fresh interpreter would."""
    import importlib
    import io
    import runpy

    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    env: dict[str, str] = request["env"]
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    extra = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    base = [entry for entry in sys.path if entry not in extra]
    sys.path[:] = [os.getcwd(), *extra, *base]
    importlib.invalidate_caches()
    encoding = sys.stdout.encoding if sys.stdout else "utf-8"
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding=encoding, line_buffering=os.isatty(1)
    )
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    for name in ("stdin", "stdout", "stderr"):  # what a fresh interpreter's __stdout__ etc. are
        setattr(sys, f"__{name}__", getattr(sys, name))
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # a fresh process's global generator, not a copy of the worker's
    sys.argv = ["-m", *request["argv"]]
    try:
        runpy.run_module("mlpipeline.stages", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    _finish(code)


def _exit_code(value: object) -> int:
    """The status ``sys.exit(value)`` gives (None: 0; a message: printed, 1)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _finish(code: int) -> None:
    """End the stage child as the interpreter would (threads joined, atexit handlers run, streams flushed), but
    without tearing down every preloaded module: that costs a second and copies the worker's memory."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what interpreter exit does first
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


# ---- the command line ----


def _daemonize(log: Path) -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)


def _running(path: Path) -> int | None:
    """The pid of the worker serving ``path``, if one answers there."""
    pid_file = path.parent / "pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return None
    finally:
        probe.close()
    return pid


def start(root: Path, idle: float, foreground: bool = False, preload: tuple[str, ...] = PRELOAD) -> int:
    """Start the worker for ``root`` (detached unless ``foreground``); do nothing if one already serves it."""
    path = socket_path(root.resolve())
    if len(str(path)) > MAX_SOCKET_PATH:
        print(f"zygote: not started, socket path too long for a Unix socket: {path}", file=sys.stderr)
        return 1
    if _running(path) is not None:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not foreground:
        _daemonize(path.parent / "log")
    os.environ.pop("PYTHONPATH", None)  # each child gets its client's; the worker's own must not linger
    worker = _Worker(path, idle, preload)
    worker.bind()  # before preloading: early clients wait in the backlog instead of running plain
    (path.parent / "pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stopping", True))  # the accept loop sees it
    request = None
    try:
        worker.preload()
        request = worker.serve()
    finally:
        if request is None:
            worker.close()
    if request is None:
        return 0
    _become_stage(request)
    return 0


def stop(root: Path) -> int:
    """Stop the worker for ``root`` if one runs (stages it started finish)."""
    path = socket_path(root.resolve())
    pid = _running(path)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(40):  # it stops within a tick; stages it started run on to their end
            time.sleep(TICK / 2)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="zygote.py", description="The pre-imported stage worker.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "status"):
        command = commands.add_parser(name)
        command.add_argument("--root", type=Path, default=None, help="the project (default: $DVC_ROOT or cwd)")
        if name == "start":
            command.add_argument("--idle", type=float, default=900.0, help="exit after this many idle seconds")
            command.add_argument("--foreground", action="store_true", help="do not detach (tests, debugging)")
            command.add_argument("--preload", default=",".join(PRELOAD), help="modules to import, comma-separated")
    args = parser.parse_args(argv)
    root = args.root or project_root()
    if args.command == "start":
        return start(root, args.idle, args.foreground, tuple(filter(None, args.preload.split(","))))
    if args.command == "stop":
        return stop(root)
    pid = _running(socket_path(root.resolve()))
    print(f"running, pid {pid}" if pid else "not running")
    return 0 if pid else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        sys.exit(client(sys.argv[2], sys.argv[3], sys.argv[4:]))
    sys.exit(main(sys.argv[1:]))
