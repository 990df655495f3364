"""Where a stage runs: in-process (default) or in its own container (``MLPIPELINE_RUNTIME=docker``).

The container is a sibling started through the Docker socket, never a child: it mounts the project root at the
same absolute path and works in the same directory, so no path is ever written down and ``dvc exp run --temp``
copies (under ``.dvc/tmp/exps``) work too. It runs as the caller's uid:gid, so outputs belong to the user,
with no network unless ``MLPIPELINE_DOCKER_NETWORK`` names one (e.g. the team stack's compose network).
MLflow settings and credentials are passed through from the environment, never baked into images.

A container is labelled with the launcher process that started it. If that process is killed (``kill -9`` of a
``dvc repro``), its container is an orphan: the next launch in the same project stops and removes it before
starting anything, so a crash never leaves a stage running behind the next run's back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError, ServiceUnavailableError
from mlpipeline.io.files import owner_alive, owner_token
from mlpipeline.settings import env_settings, project_root

logger = logging.getLogger(__name__)

IMAGE_INPUTS = ("docker/Dockerfile", "docker/install_shared.py", "uv.lock", "pyproject.toml")
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


def image_name(env: str, root: Path) -> str:
    """The image of an environment (a dependency group), e.g. ``mlpipeline-train:3f2a9c0d1b2e``."""
    return f"mlpipeline-{env}:{image_tag(root)}"


def stage_envs(root: Path) -> dict[str, str]:
    """Each stage that runs in a container, and the environment (image) it runs in: the
    ``requirements/<env>.txt`` its dvc.yaml entry depends on (check-params runs where DVC runs)."""
    from mlpipeline.graph import load

    graph = load(root)
    return {s.name: s.env for s in graph.stages if s.runs_here and s.env and s.env != "check-params"}


def stage_images(root: Path) -> list[str]:
    """The images the container stages need."""
    return sorted({image_name(env, root) for env in stage_envs(root).values()})


def _mount_root() -> Path:
    """The directory to mount: DVC's repo root (the parent of an experiment's temp copy) or the cwd."""
    root = project_root()
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


def _launcher() -> str:
    """This launcher process, as a label value: ``<host>/<pid>-<start time>``."""
    return f"{socket.gethostname()}/{owner_token()}"


def remove_orphans(client: Any, root: Path) -> list[str]:
    """Stop and remove this project's stage containers whose launcher (on this host) no longer runs."""
    from docker.errors import NotFound

    host = socket.gethostname()
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"mlpipeline.project={root}"}):
        launcher_host, _, token = str(container.labels.get("mlpipeline.launcher", "")).partition("/")
        if launcher_host == host and not owner_alive(token):
            try:
                container.remove(force=True)
            except NotFound:
                continue
            removed.append(container.name)
            logger.warning("removed container %s: the run that started it was killed", container.name)
    return removed


def run_in_container(stage: str, args: list[str]) -> int:
    """Run ``python -m mlpipeline.stages <stage> <args>`` in the stage's image; stream its output; return its
    exit code."""
    from docker.errors import APIError, ImageNotFound

    cwd = Path.cwd().resolve()
    envs = stage_envs(cwd)
    if stage not in envs:
        raise ConfigError(
            f"stage {stage!r} cannot run in a container: dvc.yaml gives it no environment (a dependency on "
            "requirements/<env>.txt, whose image `make build` builds)"
        )
    root = _mount_root()
    client = _client()
    remove_orphans(client, root)
    image = image_name(envs[stage], cwd)
    try:
        client.images.get(image)
    except ImageNotFound as exc:
        raise MlpipelineError(
            f"image {image} not found: the stage images are missing or older than docker/Dockerfile, uv.lock or "
            "pyproject.toml. Run `make build`"
        ) from exc
    network = env_settings().mlpipeline_docker_network
    logger.debug("running %s in %s (network %s, mount %s)", stage, image, network, root)
    try:
        container = client.containers.run(
            image,
            ["python", "-m", "mlpipeline.stages", stage, *args],
            detach=True,
            user=f"{os.getuid()}:{os.getgid()}",
            working_dir=str(cwd),
            volumes={str(root): {"bind": str(root), "mode": "rw"}},
            environment=container_env(cwd),
            network_mode=network,
            labels={"mlpipeline.stage": stage, "mlpipeline.project": str(root), "mlpipeline.launcher": _launcher()},
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
