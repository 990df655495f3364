"""A registered version's life after the gate: where it came from, rollback, retire, reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpipeline.cli.base import ModelOption, ParamsOption, RefArgument, app, logger, model_name

HEADLINE = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")


@app.command()
def lineage(
    ref: RefArgument = "champion",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Show where a model version came from: git commit, data and params hashes, run, metrics, aliases.

    Example: `mlpipeline lineage champion`, `mlpipeline lineage 3 --json`.
    """
    import json

    from mlpipeline.io import tracking
    from mlpipeline.io.lineage import describe

    tracking.configure()
    info = describe(model_name(model, params), ref)
    if as_json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    tags = info["tags"]
    lines = [
        f"{info['model']} version {info['version']}" + (f"  [{', '.join(info['aliases'])}]" if info["aliases"] else ""),
        f"  run            {info['run_id']} (experiment {info['experiment_id']})",
        f"  git commit     {tags.get('git.commit', '?')}"
        + ("  (tree was dirty)" if tags.get("git.dirty") == "true" else ""),
        f"  raw data       {tags.get('data.raw.path', '?')}  md5 {tags.get('data.raw.md5', '?')}",
        f"  train / test   md5 {tags.get('data.train.md5', '?')} / {tags.get('data.test.md5', '?')}",
        f"  params.yaml    md5 {tags.get('params.md5', '?')}",
        f"  runtime        {tags.get('mlpipeline.runtime', '?')}"
        + (f"   dvc experiment {tags['dvc.experiment']}" if "dvc.experiment" in tags else ""),
        f"  promotion      {tags.get('promotion', 'not gated')}"
        + (f" ({tags['promotion.reason']})" if "promotion.reason" in tags else ""),
        "  params         " + ", ".join(f"{k}={v}" for k, v in info["params"].items()),
        "  test metrics   "
        + ", ".join(f"{k}={info['metrics'][f'test_{k}']:.4f}" for k in HEADLINE if f"test_{k}" in info["metrics"]),
    ]
    typer.echo("\n".join(lines))


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on both versions).")],
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Move `champion` back to `previous-champion`, recording the reason."""
    from mlpipeline.io import registry, tracking

    tracking.configure()
    name = model_name(model, params)
    demoted, restored = registry.rollback(name, reason)
    logger.info("rolled back %s: champion is v%s again (v%s demoted: %s)", name, restored, demoted, reason)


@app.command()
def retire(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the version).")],
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Take `champion` away from a version that turned out wrong: no champion until a run promotes another."""
    from mlpipeline.io import registry, tracking

    tracking.configure()
    name = model_name(model, params)
    retired = registry.retire(name, reason)
    logger.info(
        "retired %s v%s (%s): %s has no champion now; `make run` promotes the next version that passes the gate "
        "(never v%s again)",
        name,
        retired,
        reason,
        name,
        retired,
    )


@app.command()
def reproduce(
    ref: RefArgument = "champion",
    model: ModelOption = "",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Rebuild a model version from exactly what made it (its commit and recorded params) and compare.

    MATCH (exit 0): rebuilt, data, model file and metrics identical. MISMATCH (exit 5): rebuilt, something
    differs (named). UNREPRODUCIBLE (exit 6): it cannot be rebuilt faithfully (uncommitted changes, params not
    recorded, data missing; each named).
    """
    from mlpipeline.errors import EXIT_MISMATCH, EXIT_UNREPRODUCIBLE
    from mlpipeline.io import tracking
    from mlpipeline.runtimes.reproduce import reproduce as rebuild

    tracking.configure()
    report = rebuild(model_name(model, params), ref)
    typer.echo(f"{report.model} v{report.version} from commit {report.commit[:12]}:")
    width = max((len(c.name) for c in report.comparisons), default=0)
    for c in report.comparisons:
        status = "ok     " if c.match else "DIFFERS"
        typer.echo(f"  {status} {c.name:{width}}  recorded {c.recorded}  reproduced {c.reproduced}")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    for reason in report.reasons:
        typer.echo(f"  {report.verdict.lower()}: {reason}")
    if report.verdict == "MATCH":
        typer.echo("MATCH: rebuilt from its commit and recorded params; data, model and metrics are identical")
        return
    typer.echo(report.verdict)
    raise typer.Exit(EXIT_MISMATCH if report.verdict == "MISMATCH" else EXIT_UNREPRODUCIBLE)
