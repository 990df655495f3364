"""The README's guarantees on the user's path: an edited source file, a params mistake, a crash, the Makefile
commands around git and the DVC remote, DVC called without the venv."""

from __future__ import annotations

import copy
import json
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.integration.conftest import client, copy_of, ran, rerun

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("guarantees")]

MODEL = "iris-classifier"


def snapshot(project: Project) -> dict[str, str]:
    """The md5 of every file DVC tracks as an output, plus dvc.lock itself."""
    from mlpipeline.io.files import md5

    lock = yaml.safe_load(project.path("dvc.lock").read_text())["stages"]
    files: dict[str, str] = {"dvc.lock": md5(project.path("dvc.lock"))}
    for entry in lock.values():
        for out in entry.get("outs", []):
            path = project.path(out["path"])
            for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if file.is_file():
                    files[str(file.relative_to(project.root))] = md5(file)
    return files


def champion(project: Project) -> str | None:
    aliases = client(project).get_registered_model(MODEL).aliases
    return str(aliases["champion"]) if "champion" in aliases else None


def committed(project: Project) -> Project:
    project.run("git", "add", "-A")
    project.run("git", "commit", "--allow-empty", "-qm", "state under test")
    return project


def test_an_edited_source_file_reruns_ingest_and_what_follows(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    raw = project.path("data/raw/iris.csv").read_text().splitlines()
    header = raw[0].split(",")
    rows = [line.split(",") for line in raw[1:]]
    keep = [i for i, name in enumerate(header) if name != "target"]
    source = project.path("data/sources/flowers.csv")

    def write(lines: list[list[str]]) -> None:
        names = ["species" if header[i] == "target_name" else header[i] for i in keep]
        source.write_text("\n".join(",".join(x) for x in [names, *([r[i] for i in keep] for r in lines)]) + "\n")

    write(rows)
    project.set_param("ingest.source", "data/sources/flowers.csv")
    project.set_param("ingest.target", "species")
    first = project.make("run")
    assert "ingest" in ran(first.stdout)
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."

    # Same file name, new content: DVC sees it (today's bug: "up to date", stale data served).
    write(rows[:-10])
    second = project.make("run")
    through_train = rerun("ingest")[: rerun("ingest").index("train") + 1]  # then evaluate and promote as need be
    assert ran(second.stdout)[: len(through_train)] == through_train
    assert len(project.path("data/raw/iris.csv").read_text().splitlines()) == len(raw) - 10

    # A new file beside it is an input too (the folder is the dependency).
    shutil.copy(source, project.path("data/sources/other.csv"))
    assert ran(project.make("run").stdout) == ["ingest"]  # same raw data out: nothing downstream reruns

    # The folder's README is documentation, not data (.dvcignore): editing it reruns nothing.
    readme = project.path("data/sources/README.md")
    readme.write_text(readme.read_text() + "\nOur files come from the lab's export.\n")
    assert ran(project.make("run").stdout) == []


def test_a_source_outside_data_sources_is_refused_with_the_fix(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    before = snapshot(project)
    project.set_param("ingest.source", "elsewhere/flowers.csv")
    failed = project.make("run", check=False)
    assert failed.returncode != 0
    assert "data/sources/" in failed.stdout + failed.stderr
    assert snapshot(project) == before


def mistakes(good: str) -> dict[str, tuple[str, str]]:
    """Each kind of params mistake: the broken file and the message that must name it."""
    data = yaml.safe_load(good)

    def changed(section: str, **values: object) -> str:
        edited = copy.deepcopy(data)
        edited[section].update(values)
        return yaml.safe_dump(edited, sort_keys=False)

    unnamed = copy.deepcopy(data)
    del unnamed["ingest"]["name"]
    return {
        "unknown-key": (changed("train", n_estimatorz=10), "unknown key 'train.n_estimatorz'"),
        "wrong-type": (changed("train", n_estimators="ten"), "'train.n_estimators': input should be a valid integer"),
        "out-of-range": (changed("preprocess", test_size=1.5), "'preprocess.test_size': input should be less than 1"),
        "yaml-syntax": (good.replace("  seed: 42\n", "  seed: 42\n   oops: 1\n", 1), "YAML syntax error"),
        "duplicate-key": (
            good.replace("  n_estimators: 100", "  n_estimators: 100\n  n_estimators: 5"),
            "duplicate key",
        ),
        "empty-file": ("", "is empty"),
        "missing-interpolated-key": (yaml.safe_dump(unnamed, sort_keys=False), "'ingest.name'"),
    }


def test_every_kind_of_params_mistake_loses_nothing(done: Project, tmp_path: Path) -> None:
    """Each mistake fails with its message; every tracked output, dvc.lock and the champion are unchanged."""
    project = committed(copy_of(done, tmp_path / "p"))
    good = project.path("params.yaml").read_text()
    before = snapshot(project)
    holder = champion(project)
    versions = len(client(project).search_model_versions(f"name='{MODEL}'"))
    for kind, (broken, message) in mistakes(good).items():
        assert broken != good, kind
        project.path("params.yaml").write_text(broken)
        made = project.make("run", check=False)
        assert made.returncode != 0, kind
        assert message in made.stdout + made.stderr, (kind, made.stdout, made.stderr)
        assert "Traceback" not in made.stderr
        plain = project.repro(check=False)  # DVC called directly: check-params stops it before any stage
        assert plain.returncode != 0, (kind, plain.stdout)
        assert ran(plain.stdout) in ([], ["check-params"]), (kind, plain.stdout)
        assert snapshot(project) == before, kind
        assert champion(project) == holder, kind
        assert len(client(project).search_model_versions(f"name='{MODEL}'")) == versions, kind
    project.path("params.yaml").write_text(good)
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_a_params_mistake_only_the_data_reveals_loses_nothing(done: Project, tmp_path: Path) -> None:
    """test_size 0.99 is in range, but leaves Iris 1 train row for 3 classes: preprocess fails after DVC removed
    its outputs, and `make run` puts the last good ones back (dvc.lock still records them; check-params, which
    passed, is locked with the new value)."""
    project = committed(copy_of(done, tmp_path / "p"))
    before, holder = snapshot(project), champion(project)
    project.set_param("preprocess.test_size", 0.99)
    made = project.make("run", check=False)
    assert "cannot split" in made.stderr, made.stderr
    assert "stage 'preprocess' failed with exit code 3" in made.stderr
    assert "kept the last good outputs of 'preprocess'" in made.stderr
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k != "dvc.lock"} == {k: v for k, v in before.items() if k != "dvc.lock"}
    assert champion(project) == holder
    status = project.run("dvc", "status", "preprocess").stdout
    assert "deleted" not in status, status  # only the params changed


def test_a_missing_params_file_is_an_error(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    for cmd in (["mlpipeline", "check-params", "--params", "nope.yaml"], ["mlpipeline", "train", "--params", "x.yaml"]):
        failed = project.run(*cmd, check=False)
        assert failed.returncode == 2
        assert "not found" in failed.stderr


def test_make_exp_checks_overrides_before_dvc_runs(done: Project, tmp_path: Path) -> None:
    project = committed(copy_of(done, tmp_path / "p"))
    before = snapshot(project)
    typo = project.make("exp", "ARGS=-S train.n_estimatorz=3", check=False)
    assert typo.returncode != 0
    assert "train.n_estimatorz" in typo.stdout + typo.stderr
    bad = project.make("exp", "ARGS=-S train.n_estimators=-1", check=False)
    assert bad.returncode != 0
    assert "'train.n_estimators'" in bad.stderr
    assert project.run("dvc", "exp", "ls", "--all-commits").stdout.count("exp-") == 0
    assert snapshot(project) == before
    # DVC's own `exp run -S` writes the value into params.yaml before any check, and leaves it there when the
    # run fails: the error says so, and how to see it.
    plain = project.run("dvc", "exp", "run", "-S", "train.n_estimators=many", check=False)
    assert plain.returncode != 0
    assert "DVC wrote it into params.yaml and does not undo it when a run fails" in plain.stderr, plain.stderr
    assert "many" in project.run("git", "diff", "params.yaml").stdout


def test_a_failed_experiment_leaves_the_workspace_as_it_was(done: Project, tmp_path: Path) -> None:
    """`make exp` whose -S values pass the checks but whose run fails later (here train: the tracking server is
    down, after preprocess already split with the new test_size): params.yaml, dvc.lock and every output are as
    before, byte for byte, so the next `make run` runs on what the user typed."""
    project = committed(copy_of(done, tmp_path / "p"))
    before, params = snapshot(project), project.path("params.yaml").read_bytes()
    project.env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"
    failed = project.make("exp", "ARGS=-S preprocess.test_size=0.4", check=False)
    assert "stage 'train' failed with exit code 4" in failed.stderr, failed.stderr
    assert "put params.yaml back as it was before the experiment" in failed.stderr
    assert project.path("params.yaml").read_bytes() == params
    assert snapshot(project) == before
    assert project.run("git", "status", "--porcelain", "params.yaml", "dvc.lock").stdout == ""
    del project.env["MLFLOW_TRACKING_URI"]
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_a_kill_9_mid_stage_leaves_no_residue(done: Project, tmp_path: Path) -> None:
    project = committed(copy_of(done, tmp_path / "p"))
    project.set_param("train.seed", 5)
    env = {**project.env, "MLPIPELINE_CRASH_AT": "train.registered"}
    # Its own session: the crash kills the whole process group (DVC included), as a power cut would.
    crashed = subprocess.run(
        ["dvc", "repro"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    assert crashed.returncode == -signal.SIGKILL
    mlflow = client(project)
    (orphan,) = [
        v for v in mlflow.search_model_versions(f"name='{MODEL}'") if v.tags.get("mlpipeline.evaluated") == "false"
    ]
    assert mlflow.get_run(orphan.run_id).info.status == "RUNNING"  # as the kill left it

    rerun = project.make("run")
    assert "train" in ran(rerun.stdout)
    assert mlflow.get_run(orphan.run_id).info.status == "FAILED"
    assert "died" in mlflow.get_run(orphan.run_id).data.tags["mlpipeline.orphaned"]
    running = mlflow.search_runs(
        [e.experiment_id for e in mlflow.search_experiments()], filter_string="attributes.status = 'RUNNING'"
    )
    assert not list(running)
    versions = mlflow.search_model_versions(f"name='{MODEL}'")
    crashed_version = mlflow.get_model_version(MODEL, orphan.version)
    assert crashed_version.tags["mlpipeline.evaluated"] == "false"
    assert "champion" not in crashed_version.aliases
    holder = champion(project)
    assert [str(v.version) for v in versions if v.tags.get("champion") == "true"] == [holder]
    # Promoting it explicitly goes through the same gate, which refuses a version never evaluated.
    refused = project.run("mlpipeline", "promote", "--version", str(orphan.version), check=False)
    assert "never evaluated" in refused.stdout + refused.stderr
    assert champion(project) == holder
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_a_full_disk_while_train_saves_the_model_names_the_path_and_keeps_the_champion(
    done: Project, tmp_path: Path
) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    project = copy_of(done, tmp_path / "p")
    holder = champion(project)
    models = project.path("models")
    shutil.rmtree(models)
    models.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(models)], check=True)
    try:
        full = project.run("mlpipeline", "train", check=False)
    finally:
        subprocess.run(["umount", "-l", str(models)], check=True)
    assert full.returncode == 1, full.stderr
    assert "no space left on the disk writing models/model (0.0 MiB free on" in full.stderr, full.stderr
    assert "internal error" not in full.stderr
    assert "Traceback" not in full.stderr
    assert champion(project) == holder


def test_dvc_from_the_venv_without_activating_it(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    venv = Path(sys.executable).parent.parent
    project.path(".venv").symlink_to(venv, target_is_directory=True)
    bare = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": project.env.get("MLFLOW_TRACKING_URI", ""),
    }
    bare = {k: v for k, v in bare.items() if v}
    done_ = subprocess.run(
        [str(project.path(".venv/bin/dvc")), "repro", "--force", "--single-item", "ingest"],
        cwd=project.root,
        env=bare,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done_.returncode == 0, done_.stdout + done_.stderr
    assert ran(done_.stdout) == ["ingest"]
    # mlpipeline's own commands run the dvc of its environment too, not PATH's (there is none on this PATH).
    project.run("dvc", "remote", "add", "-d", "here", str(tmp_path / "remote"))
    pushed = subprocess.run(
        [str(project.path(".venv/bin/mlpipeline")), "push"],
        cwd=project.root,
        env=bare,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert any((tmp_path / "remote").rglob("*")), "nothing was pushed"
    # On a terminal DVC draws its progress there itself; the push still completes and says so.
    if shutil.which("script"):
        on_tty = subprocess.run(
            ["script", "-qec", f"{project.path('.venv/bin/mlpipeline')} push", "/dev/null"],
            cwd=project.root,
            env=bare,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert on_tty.returncode == 0, on_tty.stdout
        assert "up to date" in on_tty.stdout.lower() or "pushed" in on_tty.stdout, on_tty.stdout

    # A Python without our dependencies: one line saying what to do, not a traceback.
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or subprocess.run([python, "-c", "import pydantic"], capture_output=True).returncode == 0:
        pytest.skip("no system Python without pydantic here")
    failed = subprocess.run(
        ["sh", "bin/stage", "ingest"],
        cwd=project.root,
        env={**bare, "MLPIPELINE_PYTHON": python},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, failed.stderr
    assert "make setup" in lines[0]


def test_push_and_pull_without_a_remote_fail_with_the_fix(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    for target in ("push", "pull"):
        failed = project.make(target, check=False)
        assert failed.returncode != 0, target
        assert "no DVC remote is configured" in failed.stdout + failed.stderr
        assert "make setup-remote" in failed.stdout + failed.stderr


def test_setup_env_creates_a_private_env_and_never_overwrites_it(done: Project, tmp_path: Path) -> None:
    project = copy_of(done, tmp_path / "p")
    project.path(".env").unlink(missing_ok=True)
    project.make("setup-env")
    env_file = project.path(".env")
    assert env_file.read_text() == project.path(".env.example").read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env_file.write_text("POSTGRES_PASSWORD=mine\n")
    again = project.make("setup-env")
    assert "left as it is" in again.stdout
    assert env_file.read_text() == "POSTGRES_PASSWORD=mine\n"
    assert project.run("git", "check-ignore", "-q", ".env").returncode == 0


def test_git_sync_pushes_the_data_then_commits_and_pushes_the_code(done: Project, tmp_path: Path) -> None:
    project = committed(copy_of(done, tmp_path / "p"))
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    store = tmp_path / "dvc-store"
    project.run("git", "remote", "add", "origin", str(origin))
    project.run("git", "push", "-q", "-u", "origin", "HEAD")
    project.run("dvc", "remote", "add", "-d", "--local", "store", str(store))

    # Out of date: refused before anything is pushed or committed.
    project.set_param("train.max_depth", 3)
    refused = project.make("git-sync", check=False)
    assert refused.returncode != 0
    assert "make run first" in refused.stdout + refused.stderr
    assert not store.exists()

    project.make("run")
    synced = project.make("git-sync")
    assert "committed" in synced.stdout
    assert project.run("git", "status", "--porcelain").stdout == ""
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    pushed = subprocess.run(["git", "-C", str(origin), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert pushed.stdout.strip() == head
    shown = subprocess.run(
        ["git", "-C", str(origin), "show", f"{head}:params.yaml"], capture_output=True, text=True, check=True
    )
    assert "max_depth: 3" in shown.stdout
    # Every output of the committed dvc.lock is in the remote: a teammate can `git pull && make pull`.
    status = json.loads(project.run("dvc", "status", "--cloud", "--json").stdout)
    assert status == {}
    assert "nothing new to commit" in project.make("git-sync").stdout
