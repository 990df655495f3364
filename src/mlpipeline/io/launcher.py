"""Where a stage runs: in-process (default) or in its own container (``MLPIPELINE_RUNTIME=docker``).

The container is a sibling started through the Docker socket, never a child: it mounts the project root at the
same absolute path and works in the same directory, so no path is ever written down and ``dvc exp run --temp``
copies (under ``.dvc/tmp/exps``) work too. It runs as the caller's uid:gid, so outputs belong to the user,
with no network unless ``MLPIPELINE_DOCKER_NETWORK`` names one (e.g. the team stack's compose network).
MLflow settings and credentials are passed through from the environment, never baked into images.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError, ServiceUnavailableError

logger = logging.getLogger(__name__)

STAGES = ("ingest", "validate", "preprocess", "train", "evaluate", "promote")
IMAGE_INPUTS = ("docker/Dockerfile", "uv.lock", "pyproject.toml")
IN_CONTAINER = "MLPIPELINE_IN_CONTAINER"
# Passed through to stage containers when set: tracking, S3 and our own settings. Never written anywhere.
PASSTHROUGH_PREFIXES = ("MLFLOW_", "AWS_", "MLPIPELINE_", "DVC_EXP_", "GIT_")
PASSTHROUGH = ("DVC_ROOT", "DAGSHUB_USER_TOKEN", "TZ")


def image_tag(root: Path) -> str:
    """Content hash of the files that define the images (the Makefile computes the same with sha256sum)."""
    digest = hashlib.sha256()
    for name in IMAGE_INPUTS:
        try:
            digest.update((root / name).read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"{name} not found under {root}: run from the project root") from exc
    return digest.hexdigest()[:12]


def image_name(stage: str, root: Path) -> str:
    """E.g. ``mlpipeline-train:3f2a9c0d1b2e``."""
    return f"mlpipeline-{stage}:{image_tag(root)}"


def _project_root() -> Path:
    """The directory to mount: DVC's repo root (the parent of an experiment's temp copy) or the cwd."""
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()
    cwd = Path.cwd().resolve()
    return root if cwd == root or root in cwd.parents else cwd


def container_env(cwd: Path) -> dict[str, str]:
    """The environment a stage container gets."""
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSTHROUGH_PREFIXES) or k in PASSTHROUGH}
    env.update(
        MLPIPELINE_RUNTIME="local",
        PYTHONPATH=str(cwd / "src"),
        HOME="/tmp",
        USER="mlpipeline",  # the caller's uid has no passwd entry in the image; getpass and git ask
        LOGNAME="mlpipeline",
        MPLCONFIGDIR="/tmp/matplotlib",
        **{IN_CONTAINER: "1"},
    )
    return env


def _client() -> Any:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise ServiceUnavailableError(
            f"MLPIPELINE_RUNTIME=docker but the Docker daemon is not reachable at {where} ({exc}). "
            "Start Docker (and check you may use its socket), or unset MLPIPELINE_RUNTIME to run stages in-process"
        ) from exc
    return client


def run_in_container(stage: str, args: list[str]) -> int:
    """Run ``mlpipeline <stage> <args>`` in the stage's image; stream its output; return its exit code."""
    from docker.errors import APIError, ImageNotFound

    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}")
    cwd = Path.cwd().resolve()
    root = _project_root()
    client = _client()
    image = image_name(stage, cwd)
    try:
        client.images.get(image)
    except ImageNotFound as exc:
        raise MlpipelineError(
            f"image {image} not found: the stage images are missing or older than docker/Dockerfile, uv.lock or "
            "pyproject.toml. Run `make build`"
        ) from exc
    network = os.environ.get("MLPIPELINE_DOCKER_NETWORK", "none")
    logger.debug("running %s in %s (network %s, mount %s)", stage, image, network, root)
    try:
        container = client.containers.run(
            image,
            ["python", "-m", "mlpipeline", stage, *args],
            detach=True,
            user=f"{os.getuid()}:{os.getgid()}",
            working_dir=str(cwd),
            volumes={str(root): {"bind": str(root), "mode": "rw"}},
            environment=container_env(cwd),
            network_mode=network,
            labels={"mlpipeline.stage": stage},
        )
    except APIError as exc:
        raise MlpipelineError(f"cannot start {image}: {exc.explanation or exc}") from exc
    try:
        for chunk in container.logs(stream=True, follow=True):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
        status = int(container.wait().get("StatusCode", 1))
    finally:
        container.remove(force=True)
    if status != 0:
        logger.debug("stage %s exited %d in %s", stage, status, image)
    return status
