"""Where the data and runs go: the DVC remote, push and pull, DagsHub, and the Airflow side (its spec, a task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpipeline.cli.base import app, logger


@app.command("setup-remote")
def setup_remote(
    url: Annotated[
        str, typer.Option(help="s3://bucket[/prefix] (default MLPIPELINE_REMOTE_URL, s3://dvc-store).")
    ] = "",
    endpoint: Annotated[str, typer.Option(help="S3 endpoint (default MLPIPELINE_S3_ENDPOINT; 'aws' for AWS).")] = "",
    name: Annotated[str, typer.Option(help="DVC remote name.")] = "storage",
    create_bucket: Annotated[bool, typer.Option(help="Create the bucket if it is missing.")] = True,
) -> None:
    """Configure the DVC remote (idempotent): URL and endpoint in .dvc/config, credentials in .dvc/config.local.

    Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment or .env), never from a file in git.
    """
    from mlpipeline.io import remote

    target = remote.remote_from_env(url, endpoint, name)
    created = remote.ensure_bucket(target) if create_bucket else False
    remote.configure(target)
    logger.info(
        "DVC remote %r -> %s%s (%s); credentials in .dvc/config.local",
        name,
        target.url,
        f" at {target.endpoint}" if target.endpoint else "",
        "bucket created" if created else "bucket exists",
    )


@app.command()
def push(
    remote_name: Annotated[str, typer.Option("--remote", help="DVC remote (default: the default one).")] = "",
) -> None:
    """Upload DVC-tracked data and outputs to the remote (dvc push)."""
    from mlpipeline.io.remote import transfer

    logger.info("%s", transfer("push", remote_name or None))


@app.command()
def pull(
    remote_name: Annotated[str, typer.Option("--remote", help="DVC remote (default: the default one).")] = "",
) -> None:
    """Download DVC-tracked data and outputs from the remote (dvc pull)."""
    from mlpipeline.io.remote import transfer

    logger.info("%s", transfer("pull", remote_name or None))


@app.command()
def dagshub() -> None:
    """Use a DagsHub repository: its S3 endpoint as DVC remote `origin`, its MLflow server for tracking.

    Reads DAGSHUB_USER, DAGSHUB_TOKEN and DAGSHUB_REPO (owner/name, or just name for your own) from the
    environment or .env. The token goes only to .dvc/config.local and .env, both git-ignored.
    """
    from mlpipeline.io.dagshub import configure_dagshub
    from mlpipeline.settings import env_settings

    uri = configure_dagshub(env_settings())
    logger.info("DVC remote 'origin' and MLflow tracking (%s) now point at DagsHub; try `make push`", uri)


@app.command("airflow-spec")
def airflow_spec(
    check: Annotated[bool, typer.Option("--check", help="Only check that the committed file is fresh.")] = False,
) -> None:
    """Write airflow/dags/pipeline.json, the stage graph the Airflow DAG reads, from dvc.yaml (as `dvc dag`)."""
    from mlpipeline.runtimes.airflow import SPEC, write_spec

    fresh = write_spec(Path.cwd(), check=check)
    logger.info("%s %s dvc.yaml's stage graph", SPEC, "matches" if fresh else "now matches")


@app.command()
def task(
    stage: Annotated[str, typer.Argument(help="The dvc.yaml stage to run.")],
    commit: Annotated[str, typer.Option(help="Check out this commit first (the DAG run's); default: as is.")] = "",
) -> None:
    """One Airflow task, in this workspace: at --commit, `dvc repro --pull STAGE`, then push its outputs and
    run-cache to the DVC remote (configured from AWS_* and MLPIPELINE_REMOTE_URL/S3_ENDPOINT when set)."""
    from mlpipeline.runtimes.airflow import run_task

    done = run_task(stage, commit)
    logger.info(
        "task %s done%s%s",
        stage,
        f" at {done['commit'][:12]}" if done["commit"] else "",
        ", outputs and run-cache pushed" if done["remote"] else " (no DVC remote: nothing pushed)",
    )
