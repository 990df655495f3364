"""The images ``make build`` builds from docker/Dockerfile: one per environment the stages of dvc.yaml run in, plus
the server, the tracking server and the DVC runner.

Which images exist follows dvc.yaml: a stage runs in the image of the ``requirements/<env>.txt`` it depends on, so
a new stage that reuses an environment needs no new image, and one with its own group gets its image on the next
``make build``. Each image starts from the deepest shared layer its group qualifies for (computed by
``docker/install_shared.py node``, the same script that installs the layers) and syncs exactly its group.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlpipeline.errors import MlpipelineError, ServiceUnavailableError
from mlpipeline.runtimes.docker import image_tag, stage_envs

logger = logging.getLogger(__name__)

DOCKERFILE = Path("docker/Dockerfile")
LAYERS = Path("docker/install_shared.py")
# Images besides the stages' own: the model server, the team stack's tracking server, the DVC runner.
SERVICE_IMAGES = (("serve", "serve", ""), ("tracking", "tracking", ""), ("runner", "pipeline", "git"))
RUNNER_GROUP = "pipeline"


@dataclass(frozen=True)
class Image:
    """One image: its name (``mlpipeline-<name>``), the dependency groups it holds (space-separated), Debian
    packages added."""

    name: str
    group: str
    apt: str = ""


def images(root: Path, worker: bool = False) -> list[Image]:
    """The images to build, stage environments first (in dvc.yaml's order)."""
    envs = list(dict.fromkeys(stage_envs(root).values()))
    wanted = [Image(env, env) for env in envs]
    wanted += [Image(*spec) for spec in SERVICE_IMAGES if spec[0] not in envs]
    if worker:  # a Kubernetes pod runs DVC and any stage in one container
        wanted.append(Image("worker", " ".join([RUNNER_GROUP, *envs]), "git"))
    return wanted


def _uv() -> str:
    return os.environ.get("UV") or "uv"


def layer_of(root: Path, group: str) -> str:
    """The shared layer of docker/Dockerfile the group's image starts from."""
    done = subprocess.run(
        [sys.executable, str(root / LAYERS), "node", *group.split(), "--dockerfile", str(root / DOCKERFILE)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV": _uv()},
    )
    if done.returncode != 0:
        raise MlpipelineError(
            f"cannot place the {group!r} image in docker/Dockerfile's layers: {done.stderr.strip()} "
            "(a stage's environment is a dependency group of pyproject.toml: `mlpipeline new stage --own-env` adds one)"
        )
    return done.stdout.strip()


def build(root: Path, base_image: str | None, worker: bool = False, only: list[str] | None = None) -> list[str]:
    """Build the images (or ``only`` those named) tagged with the content hash and ``latest``; return the tags."""
    if subprocess.run(["docker", "version"], capture_output=True, check=False).returncode != 0:
        raise ServiceUnavailableError("docker is not installed or its daemon is not running (.ci/provision-docker.sh)")
    tag = image_tag(root)
    built = []
    for image in images(root, worker):
        if only and image.name not in only:
            continue
        layer = layer_of(root, image.group)
        name = f"mlpipeline-{image.name}"
        logger.info("building %s:%s (group %s, from layer %s)", name, tag, image.group, layer)
        cmd = ["docker", "build", "--quiet", "-f", str(DOCKERFILE)]
        cmd += ["--build-arg", f"BASE_IMAGE={base_image}"] if base_image else []
        cmd += [
            "--build-arg",
            f"STAGE={image.group}",
            "--build-arg",
            f"NAME={image.name}",
            "--build-arg",
            f"NODE={layer}",
        ]
        cmd += ["--build-arg", f"APT_PACKAGES={image.apt}"] if image.apt else []
        cmd += ["-t", f"{name}:{tag}", "-t", f"{name}:latest", "."]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise MlpipelineError(f"building {name} failed:\n{tail}")
        built.append(f"{name}:{tag}")
    return built
