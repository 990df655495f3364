"""The README's commands exist: every `make X` is a Makefile target, every `mlpipeline X` a CLI command."""

import re
from pathlib import Path

from mlpipeline.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_make_targets_exist() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    assert {"run", "test"} <= used
    assert used <= targets, f"README uses missing targets: {used - targets}"


def test_readme_cli_commands_exist() -> None:
    import typer.main

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"\bmlpipeline ([a-z][a-z-]*)", README))
    assert used <= commands, f"README uses missing commands: {used - commands}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci/run").read_text()
    assert "make test" in ci
    assert "make lint" in ci


def test_readme_exit_codes_are_the_code_s() -> None:
    from mlpipeline import errors

    documented = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.MULTILINE))
    in_code = {str(v) for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert set(documented) == in_code
    assert {str(code): text for code, text in errors.exit_codes().items()} == documented
