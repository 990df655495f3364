"""The ``mlpipeline`` command: one subcommand per pipeline stage, plus tools around them.

DVC calls the stages (see dvc.yaml); you can too, from the project root:

    $ mlpipeline ingest            # data/raw/<ingest.name>.csv from params.yaml's ingest section
    $ mlpipeline validate          # every path comes from params.yaml (see mlpipeline.paths)
    $ mlpipeline --help

Every failure is one line naming what failed and what to do, and an exit code from the table in
:mod:`mlpipeline.errors` (the README's is checked against it); MLPIPELINE_DEBUG=1 also shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from mlpipeline.cli.base import app
from mlpipeline.cli.pipeline import add_stage_commands

# Each group registers its commands on the app when imported, in the order --help lists them.
# isort: off
from mlpipeline.cli import pipeline, lifecycle, serving, remote  # noqa: F401
# isort: on

logger = logging.getLogger("mlpipeline")

__all__ = ["app", "main", "run"]


def _register_adapt_commands() -> None:
    from mlpipeline.adapt.commands import commands, new_app

    for command in commands.registered_commands:
        app.registered_commands.append(command)
    app.add_typer(new_app, name="new")


_register_adapt_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    from typer.exceptions import TyperException

    from mlpipeline.console import configure_logging, guarded
    from mlpipeline.errors import EXIT_INTERRUPTED
    from mlpipeline.tools import own_environment_first

    configure_logging()
    own_environment_first()
    args = list(sys.argv[1:] if argv is None else argv)
    add_stage_commands(Path.cwd())

    def work() -> int | None:
        try:
            # Without standalone mode, click returns the code of a `typer.Exit` instead of raising it.
            code = app(args=args, prog_name="mlpipeline", standalone_mode=False)
        except typer.Exit as exc:
            return exc.exit_code
        except typer.Abort:
            logger.error("interrupted")
            return EXIT_INTERRUPTED
        except TyperException as exc:  # usage errors: unknown command or option, bad value
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                logger.error("%s", exc.format_message())
            return exc.exit_code
        return code if isinstance(code, int) else None

    return guarded(work)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
