"""Image builds: the layered docker/Dockerfile against the old way, one self-contained image per dependency group.

Builds every image `make build` builds from docker/Dockerfile (one per stage environment, serve, tracking and the
DVC runner: `mlpipeline images`), with the same `docker build` commands, from a warm base: the base image is
present, none of the layers above it are. So that nothing is cached, and nobody's images are touched, the builds
start from a fresh copy of the base image (`FROM <base>` plus a label: the same layers, a new id, so every layer
above it is a cache miss) and the images are named mlpipeline-bench-*; they are removed at the end (--keep to keep
them). The Airflow image, which `make build` also builds and this change leaves alone, is built the same way and
reported apart.

Then the same images the old way, from the same uv.lock and a fresh base copy of their own: docker/Dockerfile as
it was at --old-rev (each image a `uv sync` of its group from scratch, nothing shared but the base).

Figures and how they are obtained:
- build time: wall time of each `docker build`, summed (they run one after the other, as in make build);
- size: `docker image inspect` .Size, every layer the image uses;
- unique on disk: each layer counted once, base included, as the engine stores them (a layer is identified by its
  whole chain of layers below it; its size from `docker history`), the figure `docker system df` would add up.
The machine's load average is printed too: builds share it with whatever else runs. Not a test.

    python benchmarks/images.py [--base-image mlpipeline-base:bookworm] [--skip-old] [--old-rev REV] [--keep]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def images() -> dict[str, dict[str, str]]:
    """What make build builds from docker/Dockerfile (mlpipeline images): image name -> build args."""
    from mlpipeline.runtimes.images import images as wanted
    from mlpipeline.runtimes.images import layer_of

    return {
        image.name: {"STAGE": image.group, "NAME": image.name, "NODE": layer_of(REPO, image.group)}
        | ({"APT_PACKAGES": image.apt} if image.apt else {})
        for image in wanted(REPO)
    }


# The last commit whose docker/Dockerfile built each image on its own.
OLD_REV = "c4f39f3"


def docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def fresh_base(base: str, name: str) -> str:
    """A copy of ``base`` with a new id (same layers): no layer built on ``base`` is a cache hit on it."""
    tag = f"mlpipeline-bench-base:{name}"
    docker("build", "--quiet", "-t", tag, "-", stdin=f"FROM {base}\nLABEL mlpipeline.benchmark={name}\n")
    return tag


def build(dockerfile: Path, tag: str, build_args: dict[str, str]) -> float:
    args = [arg for key, value in build_args.items() for arg in ("--build-arg", f"{key}={value}")]
    start = time.perf_counter()
    docker("build", "--quiet", "-f", str(dockerfile), *args, "-t", tag, ".")
    return time.perf_counter() - start


def history_unique(tags: list[str]) -> int | None:
    """Bytes on disk of the images' layers, each counted once: the layers are told apart by the ids `docker
    history` gives each step (a step's id stands for the whole chain of layers below it). None when steps have no
    id (images built with BuildKit), which would count shared layers twice."""
    seen: dict[str, int] = {}
    for tag in tags:
        lines = docker("history", "--no-trunc", "--human=false", "--format", "{{.ID}} {{.Size}}", tag).splitlines()
        for line in lines:
            step, size = line.split()
            if step == "<missing>":
                return None
            seen[step] = int(size)
    return sum(seen.values())


def layer_store() -> int:
    """Bytes of every image layer the engine stores (`docker system df`, exact)."""
    import docker as sdk

    return int(sdk.from_env().df()["LayersSize"])


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag))


def build_all(way: str, dockerfile: Path, base: str, run: str) -> dict[str, dict[str, float]]:
    base_copy = fresh_base(base, f"{run}-{way}")
    figures = {}
    for name, build_args in images().items():
        tag = f"mlpipeline-bench-{way}-{name}:{run}"
        seconds = build(dockerfile, tag, {"BASE_IMAGE": base_copy, **build_args})
        figures[name] = {"seconds": seconds, "size": image_size(tag)}
        print(f"  {way:4s} {name:11s} {seconds:6.1f} s  {figures[name]['size'] / 1e9:5.2f} GB", flush=True)
    return figures


def remove(run: str) -> None:
    listed = docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=mlpipeline-bench-*"
    ).split()
    built = [tag for tag in listed if tag.endswith(f":{run}")]
    bases = [tag for tag in listed if tag.startswith(f"mlpipeline-bench-base:{run}-")]
    if built or bases:
        docker("rmi", *built, *bases)  # the bases last: images built on them go first


def tags(way: str, run: str) -> list[str]:
    return [f"mlpipeline-bench-{way}-{name}:{run}" for name in images()]


def measure(way: str, dockerfile: Path, base: str, run: str) -> dict[str, float]:
    """Build every image one way; its build time, sum of sizes and unique bytes on disk (two ways)."""
    before = layer_store()
    figures = build_all(way, dockerfile, base, run)
    grown = layer_store() - before
    return {
        "seconds": sum(f["seconds"] for f in figures.values()),
        "summed": sum(f["size"] for f in figures.values()),
        "unique": history_unique(tags(way, run)) or float("nan"),
        # The base's layers were stored before; the rest is what the engine's layer store grew by.
        "grown": grown + image_size(base),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-image", default="mlpipeline-base:bookworm", help="the warm base (as make build's)")
    parser.add_argument("--old-rev", default=OLD_REV, help="the commit whose docker/Dockerfile is the old way")
    parser.add_argument("--skip-old", action="store_true", help="do not build the old way")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's images")
    args = parser.parse_args()
    if subprocess.run(["docker", "image", "inspect", args.base_image], capture_output=True).returncode != 0:
        sys.exit(f"base image {args.base_image} not found (no engine, or not built: .ci/provision-docker.sh)")
    run = uuid.uuid4().hex[:8]
    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(f"image build benchmark: {cores} cores, load average {load:.1f}, base {args.base_image}, one build at a time")
    results = {}
    try:
        results["layered (docker/Dockerfile)"] = new = measure("new", REPO / "docker/Dockerfile", args.base_image, run)
        fresh = {"BASE_IMAGE": f"mlpipeline-bench-base:{run}-new"}
        airflow = build(REPO / "docker/airflow.Dockerfile", f"mlpipeline-bench-new-airflow:{run}", fresh)
        print(f"  new  airflow     {airflow:6.1f} s  (left as it was; make build builds it too)", flush=True)
        if not args.skip_old:
            with tempfile.TemporaryDirectory() as tmp:
                old_file = Path(tmp) / "Dockerfile"
                shown = ["git", "show", f"{args.old_rev}:docker/Dockerfile"]
                old_file.write_text(subprocess.run(shown, cwd=REPO, capture_output=True, text=True, check=True).stdout)
                results[f"one image per group ({args.old_rev})"] = measure("old", old_file, args.base_image, run)
    finally:
        if not args.keep:
            remove(run)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    print(f"{'9 images':34s} {'build s':>8s} {'sum of sizes':>13s} {'unique on disk':>15s} {'layer store':>12s}")
    for label, r in results.items():
        print(
            f"{label:34s} {r['seconds']:8.1f} {r['summed'] / 1e9:10.2f} GB {r['unique'] / 1e9:12.2f} GB"
            f" {r['grown'] / 1e9:9.2f} GB"
        )
    print(f"make build (these 9 and the Airflow image) from a warm base: {new['seconds'] + airflow:.1f} s")
    if len(results) == 2:
        old = list(results.values())[1]
        print(
            f"ratios one-per-group / layered: build time {old['seconds'] / new['seconds']:.1f}x, "
            f"unique on disk {old['unique'] / new['unique']:.1f}x, sum of sizes {old['summed'] / new['summed']:.2f}x"
        )
    print("targets: make build from a warm base <= 180 s; the images <= 2.5 GB unique on disk")


if __name__ == "__main__":
    main()
