"""Shared fixtures: tiny data, an isolated working directory, an MLflow store under tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def default_params_text() -> str:
    """The params the tests run with: your params.yaml's layout and comments, every key of ours at the code's
    default (Iris, the default model and gate), never your edits; the sections of your own stages as you have them
    (dvc.yaml reads those). On the project as shipped it is params.yaml itself."""
    from mlpipeline.adapt.paramsfile import set_params
    from mlpipeline.core.estimators import default_hyperparams
    from mlpipeline.settings import Params, load_yaml

    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    yours = load_yaml(text, "params.yaml") or {}
    defaults = Params().model_dump(mode="json", by_alias=True)
    defaults["train"] = {**defaults["train"], **default_hyperparams()}
    updates = {
        section: {
            key: value
            for key, value in values.items()
            if key in (yours.get(section) or {}) or value is not None  # an absent key that defaults to null stays so
        }
        for section, values in defaults.items()
    }
    for section, values in yours.items():  # your keys of ours that the code no longer knows are dropped
        if section in defaults and isinstance(values, dict):
            text = _without(text, section, [key for key in values if key not in defaults[section]])
    return set_params(text, updates)


def _without(text: str, section: str, keys: list[str]) -> str:
    import re

    lines, inside = [], False
    for line in text.splitlines():
        inside = line.startswith(f"{section}:") or (inside and not re.match(r"^\S", line))
        if not (inside and any(re.match(rf"^\s+{re.escape(key)}:", line) for key in keys)):
            lines.append(line)
    return "\n".join(lines) + "\n"


def default_params() -> dict[str, object]:
    """:func:`default_params_text` parsed: our sections alone (those of your own stages are checked by them)."""
    import yaml

    from mlpipeline.settings import Params

    ours = {field.alias or name for name, field in Params.model_fields.items()}
    data: dict[str, object] = yaml.safe_load(default_params_text())
    return {section: values for section, values in data.items() if section in ours}


def write_default_params(path: Path) -> Path:
    """Write :func:`default_params_text` to ``path`` (a params.yaml); the sections of your own stages only beside
    a dvc.yaml that has them."""
    text = default_params_text()
    if not (path.parent / "dvc.yaml").is_file():
        from mlpipeline.settings import Params, load_yaml

        ours = {field.alias or name for name, field in Params.model_fields.items()}
        text = _without_sections(text, [key for key in load_yaml(text, path) or {} if key not in ours])
    path.write_text(text, encoding="utf-8")
    return path


def _without_sections(text: str, sections: list[str]) -> str:
    import re

    lines, dropping = [], False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            dropping = any(line.startswith(f"{section}:") for section in sections)
        if not dropping:
            lines.append(line)
    return "\n".join(lines).rstrip("\n") + "\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as cwd, with the default params, dvc.yaml and the contracts, MLflow in tmp_path."""
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    write_default_params(tmp_path / "params.yaml")
    shutil.copytree(REPO / "contracts", tmp_path / "contracts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLPIPELINE_RUNTIME", raising=False)
    for name, value in (("MLFLOW_CONFIGURE_LOGGING", "false"), ("MLFLOW_DISABLE_TELEMETRY", "true")):
        monkeypatch.setenv(name, value)
    return tmp_path


def uv_path() -> str:
    """The uv that `make setup` uses: $UV (a test run inside a docs page's copy gets the outer run's), on PATH, or
    installed into the repo's .tools/."""
    return os.environ.get("UV") or shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")


def project_env(project: Path) -> dict[str, str]:
    """Environment for running DVC in a copy of the repo: its own code first, the local MLflow store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLPIPELINE_", "DVC_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project / "src")
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t")
    env["GIT_COMMITTER_EMAIL"] = "t@example.com"
    # `make run` in a copy runs stages as plain processes: a stage worker per copy would outlive the test by
    # WORKER_IDLE. The worker's own tests start it (tests/integration/test_zygote.py).
    env["WORKER"] = "0"
    return env


def copy_project(dest: Path, own_params: bool = False) -> Path:
    """Copy the repo's files (tracked, and new ones git does not ignore) into a fresh git repo at ``dest``, with
    the default params (:func:`default_params`) unless ``own_params``: the tests never depend on your params.yaml."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    if not own_params:
        write_default_params(dest / "params.yaml")
    env = project_env(dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return dest


class Project:
    """A copy of the repo to run the real pipeline in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = project_env(root)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def repro(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("dvc", "repro", *args, check=check)

    def make(self, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``make <targets>`` as a user runs it, with this test run's environment (no install in the copy)."""
        # -o: never re-sync this run's environment from the copy (it would install the copy's code into it).
        venv = VENV_BIN.parent
        return self.run("make", "-o", f"{venv}/.synced", *targets, f"VENV={venv}", f"UV={uv_path()}", check=check)

    def set_param(self, dotted: str, value: object) -> None:
        import yaml

        path = self.root / "params.yaml"
        data = yaml.safe_load(path.read_text())
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def path(self, rel: str) -> Path:
        return self.root / rel


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A fresh copy of the repo (nothing run yet)."""
    return Project(copy_project(tmp_path / "project"))


def in_threads(count: int, target: Callable[..., object], *args: object) -> None:
    """Run ``target(*args)`` in ``count`` threads at once and wait for all of them."""
    import threading

    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# Figures tests record for the end of the run (whichever xdist worker ran them): file name -> section title.
SUMMARIES = {
    "docs-files-touched.txt": "files each documented recipe touches (docs/adapt.md)",
    "corpus-metrics.txt": "the public data sets of the corpus, from CSV to served prediction (test_corpus.py)",
}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print what the tests recorded in SUMMARIES' files."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    for name, title in SUMMARIES.items():
        reports = sorted(factory.getbasetemp().glob(f"**/{name}"))
        lines = [line for report in reports for line in report.read_text(encoding="utf-8").splitlines()]
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.line(line)
