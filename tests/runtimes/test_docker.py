"""The launcher's decisions that need no Docker engine: image tags, environment, a clear error without one."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from mlpipeline.cli import main
from mlpipeline.runtimes.docker import IMAGE_INPUTS, container_env, image_tag

REPO = Path(__file__).resolve().parents[2]


def test_image_tag_matches_the_makefile() -> None:
    expected = hashlib.sha256(b"".join((REPO / name).read_bytes() for name in IMAGE_INPUTS)).hexdigest()[:12]
    assert image_tag(REPO) == expected
    made = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval=print-tag: ; @echo $(IMAGE_TAG)", "print-tag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.strip() == expected


def test_tag_changes_with_the_environment(tmp_path: Path) -> None:
    for name in IMAGE_INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    before = image_tag(tmp_path)
    (tmp_path / "uv.lock").write_text((REPO / "uv.lock").read_text() + "\n")
    assert image_tag(tmp_path) != before


def test_container_env_passes_settings_not_the_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("UNRELATED_TOKEN", "nope")
    monkeypatch.setenv("MLPIPELINE_RUNTIME", "docker")
    env = container_env(tmp_path)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"  # passed at run time, never stored in an image
    assert "UNRELATED_TOKEN" not in env
    assert env["MLPIPELINE_RUNTIME"] == "local"  # inside, the stage runs in-process
    assert env["PYTHONPATH"] == str(tmp_path / "src")


def test_unreachable_daemon_is_a_clear_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLPIPELINE_RUNTIME", "docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{workdir}/no-docker.sock")
    assert main(["ingest"]) == 4
    err = capsys.readouterr().err
    assert "MLPIPELINE_RUNTIME=docker but the Docker daemon is not reachable" in err
    assert "unset MLPIPELINE_RUNTIME" in err
    assert "Traceback" not in err
    assert not (workdir / "data").exists()
