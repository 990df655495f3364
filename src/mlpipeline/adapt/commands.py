"""The commands that change the project or read its structure: ``deps``, ``stages``, ``images``, ``lock``, ``add``
and ``new stage|estimator|transform`` (the main CLI, :mod:`mlpipeline.cli`, registers them)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

logger = logging.getLogger("mlpipeline")
commands = typer.Typer()


@commands.command()
def deps(
    check: Annotated[bool, typer.Option("--check", help="Only say whether dvc.yaml's code deps are current.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Say nothing when nothing changed (make run).")] = False,
) -> None:
    """Write each stage's code deps into dvc.yaml: bin/stage and every project module the stage imports.

    Run it (`make deps`) after adding a stage or changing imports; the rest of dvc.yaml is kept as it is.
    """
    from mlpipeline.adapt.codedeps import write
    from mlpipeline.errors import ConfigError

    changed = write(Path.cwd(), check=check)
    if changed and check:
        raise ConfigError(f"dvc.yaml's code deps are stale for {', '.join(changed)}: run `make deps` and commit it")
    if changed or not quiet:
        logger.info("dvc.yaml's code deps %s", f"rewritten for {', '.join(changed)}" if changed else "are current")


@commands.command()
def lock() -> None:
    """Re-resolve uv.lock, sync .venv and write requirements/<env>.txt of every environment a stage runs in."""
    from mlpipeline.adapt.envs import lock as relock

    written = relock(Path.cwd())
    logger.info("uv.lock and %s are up to date: commit them together", ", ".join(p.name for p in written))


@commands.command()
def add(
    package: Annotated[str, typer.Argument(help="A package as uv takes it (lightgbm, 'xgboost>=2').")],
    what: Annotated[
        str, typer.Option("--for", help="model (every environment that loads a model), a stage, or a group.")
    ] = "model",
) -> None:
    """Add a package to every dependency group that needs it, then lock (what `make add PACKAGE=... FOR=...` runs).

    Example: `mlpipeline add lightgbm --for model` (train, evaluate, promote and the server load models).
    """
    from mlpipeline.adapt.envs import add as add_package

    chosen = add_package(Path.cwd(), package, what)
    logger.info("%s is in %s; uv.lock and requirements/ are updated: commit them", package, ", ".join(chosen))


new_app = typer.Typer(help="Write the files a new stage, estimator or feature transform needs.", no_args_is_help=True)


@new_app.command("stage")
def new_stage(
    name: Annotated[str, typer.Argument(help="The stage's name (its module: src/mlpipeline/stages/NAME.py).")],
    after: Annotated[str, typer.Option("--after", help="The stage whose outputs it reads.")],
    before: Annotated[
        str, typer.Option("--before", help="A stage that reads its outputs instead of --after's (it sits between).")
    ] = "",
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value of its params section (repeat for more).")
    ] = None,
    own_env: Annotated[bool, typer.Option("--own-env", help="A dependency group (and image) of its own.")] = False,
) -> None:
    """A stage of your own: its module, its dvc.yaml entry, its params section (docs/adapt.md).

    Example: `mlpipeline new stage clip --after preprocess --before train --param quantile=0.01`.
    """
    from mlpipeline.adapt.newstage import new_stage as write_stage

    written = write_stage(name, after, before or None, param, own_env, Path.cwd())
    _format(written[0])
    logger.info("wrote %s: `make run` runs it; put your step in its main()", ", ".join(map(str, written)))


@new_app.command("estimator")
def new_estimator(
    name: Annotated[str, typer.Argument(help="Its name in train.model.")],
    classifier: Annotated[str, typer.Option(help="module:Class for classes, e.g. lightgbm:LGBMClassifier.")],
    regressor: Annotated[str, typer.Option(help="module:Class for a regression target.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A hyperparameter read from train: (key, or key=default).")
    ] = None,
    fixed: Annotated[list[str] | None, typer.Option("--fixed", help="key=value always passed (verbose=-1).")] = None,
    use: Annotated[bool, typer.Option("--use", help="Also set train.model to it in params.yaml.")] = False,
) -> None:
    """One entry in the estimator registry (src/mlpipeline/core/estimators.py), its trusted types found by fitting.

    Example: `mlpipeline new estimator lightgbm --classifier lightgbm:LGBMClassifier --regressor
    lightgbm:LGBMRegressor --param n_estimators --param learning_rate --fixed verbose=-1 --use`.
    """
    from mlpipeline.adapt.scaffold import new_estimator as write_estimator

    path, trusted = write_estimator(name, classifier, regressor, list(param or []), list(fixed or []), Path.cwd())
    _format(path)
    logger.info("added estimator %r to %s (trusted types: %s)", name, path, ", ".join(trusted) or "none needed")
    if use:
        _use({"train": {"model": name}})


@new_app.command("transform")
def new_transform(
    name: Annotated[str, typer.Argument(help="The feature's name (a column the model computes).")],
    expression: Annotated[str, typer.Argument(help="Of input columns, e.g. 'petal_length_cm * petal_width_cm'.")],
    use: Annotated[bool, typer.Option("--use", help="Also add it to train.features in params.yaml.")] = False,
) -> None:
    """One feature transform (src/mlpipeline/core/features.py): computed inside the model from the raw inputs."""
    from mlpipeline.adapt.scaffold import new_transform as write_transform
    from mlpipeline.settings import load_params

    path = write_transform(name, expression, "numeric", Path.cwd())
    _format(path)
    logger.info("added feature %r to %s", name, path)
    if use:
        _use({"train": {"features": [*load_params(Path("params.yaml")).train.features, name]}})


def _use(updates: dict[str, dict[str, Any]]) -> None:
    from mlpipeline.adapt.paramsfile import set_params
    from mlpipeline.io.files import write_text

    params_file = Path("params.yaml")
    write_text(params_file, set_params(params_file.read_text(encoding="utf-8"), updates))
    logger.info("params.yaml: %s", ", ".join(f"{s}.{k} = {v}" for s, kv in updates.items() for k, v in kv.items()))


def _format(path: Path) -> None:
    """ruff-format a written file when ruff is there (the dev environment), so `make lint` passes as it is."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if Path(ruff).is_file():
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False, timeout=60)


@commands.command()
def stages(
    envs: Annotated[bool, typer.Option("--envs", help="The environments (images) of the container stages.")] = False,
) -> None:
    """Print the stages of dvc.yaml that run this project's code, in order (the Makefile reads this)."""
    from mlpipeline.graph import load

    graph = load(Path.cwd())
    typer.echo(" ".join(graph.envs() if envs else graph.project_stages))


@commands.command()
def images(
    build: Annotated[bool, typer.Option("--build", help="Build them (what `make build` runs).")] = False,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            help="Their base: an image with python3 (3.11+), venv and pip (default docker/Dockerfile's pinned one).",
        ),
    ] = None,
    worker: Annotated[bool, typer.Option("--worker", help="Also the Kubernetes worker image.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Only this image (e.g. train, runner).")] = None,
) -> None:
    """List (or build) the images: one per environment dvc.yaml's stages run in, the server, tracking, the runner.

    Example: `mlpipeline images`, `mlpipeline images --build --base-image python:3.12-slim-bookworm`.
    """
    from mlpipeline.runtimes.docker import image_tag
    from mlpipeline.runtimes.images import build as build_images
    from mlpipeline.runtimes.images import images as wanted

    root = Path.cwd()
    if not build:
        tag = image_tag(root)
        for image in wanted(root, worker):
            typer.echo(f"mlpipeline-{image.name}:{tag}  (group {image.group})")
        return
    for name in build_images(root, base_image, worker, only or None):
        logger.info("built %s", name)


@commands.command("pin-images")
def pin_images(
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if a pin is behind.")] = False,
) -> None:
    """Move the third-party image pins (compose.yaml, the Dockerfiles' BASE_IMAGE) to their series' newest patch
    tag and its digest, asking each registry (what `make pin-images` runs; needs the registries)."""
    from mlpipeline.runtimes.pins import update

    changes = update(check=check)
    for pin, reference in changes:
        logger.info("%s: %s -> %s", pin.file, pin, reference)
    if not changes:
        logger.info("every image pin is current")
    elif check:
        raise typer.Exit(1)
