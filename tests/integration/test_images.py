"""The images `make build` makes from docker/Dockerfile: each holds exactly its dependency group, they share the
layers their groups have in common, and they run as non-root.

Needs a reachable Docker engine and the images of the current tag (`make build`); skipped with the reason
otherwise, unless MLPIPELINE_REQUIRE_DOCKER=1 (set by .ci/run), which turns a skip into a failure. The make test
needs neither.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from typing import Any

import pytest

from mlpipeline.runtimes.docker import image_tag, stage_envs
from mlpipeline.runtimes.images import images
from tests.conftest import REPO, uv_path
from tests.integration.conftest import require_docker

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("docker")]

# Image name -> the dependency group it is built from (make build), as dvc.yaml's stages need them.
GROUPS = {image.name: image.group for image in images(REPO)}
STAGE_ENVS = stage_envs(REPO)
NON_ROOT = "10001"

# What a container reports: its marker environment (PEP 508) and its installed distributions.
INSPECT = """
import importlib.metadata, json, os, platform, sys
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
dists = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}
print(json.dumps({"env": env, "dists": dists}))
"""


def image(name: str) -> str:
    return f"mlpipeline-{name}:{image_tag(REPO)}"


@pytest.fixture(scope="module")
def engine() -> Any:
    require_docker([image(name) for name in GROUPS])
    import docker

    return docker.from_env(timeout=60)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def locked(group: str) -> tuple[tuple[str, str, str], ...]:
    """(name, version, marker) of each package uv.lock gives the group, as `uv export` lists them."""
    export = ["export", "--frozen", "--no-default-groups", "--group", group, "--no-emit-project", "--no-hashes"]
    out = subprocess.run(
        [uv_path(), *export, "--no-header", "--no-annotate", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*(?:;\s*(.*))?$", line.strip())
        if match:
            found.append((normalized(match[1]), match[2], match[3] or ""))
    assert found, out
    return tuple(found)


@pytest.mark.docker
@pytest.mark.parametrize("name", list(GROUPS))
def test_each_image_holds_exactly_its_dependency_group(engine: Any, name: str) -> None:
    from packaging.markers import Marker

    report = json.loads(engine.containers.run(image(name), ["python", "-c", INSPECT], remove=True))
    installed = {normalized(dist): version for dist, version in report["dists"].items()}
    expected = {
        dist: version
        for dist, version, marker in locked(GROUPS[name])
        if not marker or Marker(marker).evaluate(report["env"])
    }
    assert installed == expected  # so the data stages carry no mlflow, the model stages no polars


def having(package: str) -> list[str]:
    """The images whose group's locked packages include ``package``."""
    return [name for name, group in GROUPS.items() if any(dist == package for dist, _, _ in locked(group))]


def layers(engine: Any, name: str) -> list[str]:
    return list(engine.images.get(name).attrs["RootFS"]["Layers"])


def shared(engine: Any, *names: str) -> int:
    """How many leading layers the images have in common (a layer on disk is its whole prefix)."""
    stacks = [layers(engine, name) for name in names]
    count = 0
    for column in zip(*stacks, strict=False):
        if len(set(column)) > 1:
            break
        count += 1
    return count


@pytest.mark.docker
def test_images_share_the_layers_their_groups_have_in_common(engine: Any) -> None:
    mine = [image(name) for name in GROUPS]
    airflow = (REPO / "docker/airflow.Dockerfile").is_file()  # the Airflow image is built on the base alone
    base = shared(engine, image("ingest"), f"mlpipeline-airflow:{airflow_image_tag()}") if airflow else 0
    everything = shared(engine, *mine)
    data = shared(engine, *(image(name) for name in having("polars")))  # docker/Dockerfile's layers: by package
    models = shared(engine, *(image(name) for name in having("mlflow")))
    tabular = [name for name in having("polars") if name in having("scikit-learn")]
    stages = shared(engine, *(image(name) for name in GROUPS if name != "runner"))
    # All share the project's dependencies above the base; the data stages and the model stages each share more.
    assert everything > base
    assert data > stages >= everything
    assert models > stages
    assert len(tabular) < 2 or shared(engine, *(image(name) for name in tabular)) > data
    # In bytes on disk: most of each stage image is stored once for several images, not for itself alone.
    sizes = {tag: entry for entry in engine.df()["Images"] for tag in entry.get("RepoTags") or []}
    for name in GROUPS:
        if name == "runner":  # DVC and git are the runner's alone
            continue
        entry = sizes[image(name)]
        assert entry["Size"] - entry["SharedSize"] <= entry["Size"] / 3, (name, entry["Size"], entry["SharedSize"])


@pytest.mark.docker
@pytest.mark.parametrize(
    ("name", "command"),
    [
        *(
            (env, ["python", "-c", f"import mlpipeline.stages.{stage.replace('-', '_')}"])
            for stage, env in STAGE_ENVS.items()
        ),
        ("serve", ["python", "-c", "import fastapi, uvicorn, mlflow, skops"]),
        ("tracking", ["mlflow", "server", "--help"]),
        ("runner", ["sh", "-c", "git --version && dvc --version"]),
    ],
)
def test_images_run_as_non_root(engine: Any, name: str, command: list[str]) -> None:
    assert engine.images.get(image(name)).attrs["Config"]["User"] == NON_ROOT
    src = str(REPO / "src")
    run = ["docker", "run", "--rm", "-v", f"{src}:{src}:ro", "-e", f"PYTHONPATH={src}", image(name)]
    done = subprocess.run(
        [*run, "sh", "-c", 'id -u && exec "$@"', "sh", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == NON_ROOT


def airflow_image_tag() -> str:
    return make_variable("AIRFLOW_IMAGE_TAG")


def make_variable(name: str) -> str:
    """A variable of the Makefile, as make computes it."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", f"print-variable: ; @echo $({name})", "print-variable"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_make_tags_the_images_as_the_launcher_looks_them_up() -> None:
    assert make_variable("IMAGE_TAG") == image_tag(REPO)
