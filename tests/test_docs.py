"""The learner docs under docs/ are run, not just read: every command in them runs here, in order, page by page.

Convention (docs/README.md explains it to readers): a ```console block holds commands, each line starting with
``$ `` (a trailing ``\\`` continues it on the next line); the lines after a command are its expected output.
``...`` alone on a line matches any number of lines, and inside a line any text; blank lines are ignored; a last
line ``[N]`` says the command exits with status N (else it must exit 0). A command with no output lines shown is
only checked for its exit status. Each command runs in a fresh ``bash -c`` at the root of a copy of the project
made for its page (one copy per page, shared by its blocks in order), with stderr merged into stdout as a
terminal shows it. A command that starts a process in the background writes its pid to ``<name>.pid`` at the
copy's root (``(mlpipeline serve ... & echo $! > serve.pid)``); the test kills it when the page ends, passed or
not. ``<!-- needs: X -->`` just before a block says it needs a service; the block runs when the service is there
and is skipped with the reason otherwise (docker: fails instead in CI, see NEEDS).

A page that changes the project's dependencies (docs/adapt.md adds LightGBM) says ``<!-- test: own-environment -->``:
its copy installs its own .venv instead of using this test run's, and its `make test` (the adapted project's whole
suite) leaves out what this run already covers and what would recurse: the docs pages themselves, the docker and
team-stack tiers, and the other data sets and the drift monitor, which no recipe touches (``NESTED_TESTS``). For
such a page the files each block leaves changed (besides dvc.lock and outputs) are printed at the end of the run:
how many files each recipe touches.

Every other fenced block (diagrams, file excerpts) is not run, so no shell block may use another language tag.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, Project, copy_project, project_env, uv_path

DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\S*)\s*$")
NEEDS = re.compile(r"^<!--\s*needs:\s*([a-z-]+)\s*-->$")
OWN_ENVIRONMENT = "<!-- test: own-environment -->"
# tests/integration/ modules whose behaviour no recipe changes (the outer run covers them): the nested run was the
# longest single test of CI, near its 90-minute budget.
UNTOUCHED = ("test_corpus.py", "test_datasets.py", "test_monitor.py", "test_adaptable.py", "test_guarantees.py")
NESTED_TESTS = '-m "not docker and not server" --ignore=tests/test_docs.py' + "".join(
    f" --ignore=tests/integration/{name}" for name in UNTOUCHED
)
# A command may take as long as a whole test suite (docs/adapt.md runs `make test` in its copy).
COMMAND_TIMEOUT = 3600
STATUS = re.compile(r"^\[(\d+)\]$")


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        found = STATUS.match(self.expected[-1]) if self.expected else None
        return int(found.group(1)) if found else 0

    @property
    def output(self) -> list[str]:
        return self.expected[:-1] if self.expected and STATUS.match(self.expected[-1]) else self.expected


@dataclass
class Block:
    page: Path
    line: int
    needs: str | None
    commands: list[Command]

    @property
    def id(self) -> str:
        return f"{self.page.stem}:{self.line}"


def fenced(page: Path) -> list[tuple[int, str, list[str], str]]:
    """Every fenced block of ``page``: (line of the fence, language, body lines, the last text line before it)."""
    blocks: list[tuple[int, str, list[str], str]] = []
    body: list[str] = []
    lang: str | None = None
    start, before, previous = 0, "", ""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if lang is None and fence:
            lang, start, body, before = fence.group(1), number, [], previous
        elif lang is not None and line.strip() == "```":
            blocks.append((start, lang, body, before))
            lang = None
        elif lang is not None:
            body.append(line)
        elif line.strip():
            previous = line.strip()
    assert lang is None, f"{page.name}: unclosed fence at line {start}"
    return blocks


def console_blocks(page: Path) -> list[Block]:
    """The runnable blocks of ``page``, in order."""
    found = []
    for start, lang, body, before in fenced(page):
        if lang != "console":
            continue
        commands: list[Command] = []
        continued = False
        for offset, line in enumerate(body, 1):
            if continued:
                commands[-1].text += "\n" + line
            elif line.startswith("$ "):
                commands.append(Command(start + offset, line[2:]))
            elif line.strip():
                assert commands, f"{page.name}:{start + offset}: output before any command"
                commands[-1].expected.append(line.rstrip())
            continued = line.startswith("$ ") or continued
            continued = continued and line.endswith("\\")
        assert commands, f"{page.name}:{start}: a console block without a command"
        needs = NEEDS.match(before)
        found.append(Block(page, start, needs.group(1) if needs else None, commands))
    return found


def squeezed(line: str) -> str:
    """``line`` with each run of whitespace (a table's padding, DVC's tabs) as one space, none at the ends."""
    return " ".join(line.split())


def matches(expected: list[str], actual: str) -> bool:
    """Whether ``actual`` is ``expected`` with ``...`` wildcards (blank lines dropped, whitespace squeezed)."""
    pattern = ""
    for line in map(squeezed, expected):
        if line == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += "[^\n]*?".join(map(re.escape, line.split("..."))) + r"\n"
    lines = [squeezed(line) for line in actual.splitlines() if line.strip()]
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in lines)) is not None


# ---- the services a block may need: None when present, else why not ----


def _docker() -> str | None:
    from mlpipeline.runtimes.docker import image_name, stage_images
    from tests.integration.conftest import docker_missing

    reason = docker_missing([*stage_images(REPO), image_name("runner", REPO)])
    if reason and os.environ.get("MLPIPELINE_REQUIRE_DOCKER") == "1":
        pytest.fail(f"MLPIPELINE_REQUIRE_DOCKER=1 but {reason}")
    return reason


def _stack() -> str | None:
    from mlpipeline.runtimes.docker import image_tag
    from tests.integration.conftest import docker_missing

    # `make up` pulls nothing here: the registry images must be present already (CI has none: it is offline).
    images = [f"mlpipeline-tracking:{image_tag(REPO)}", "minio/minio:latest", "minio/mc:latest", "postgres:16"]
    reason = docker_missing(images)
    for port in (5000, 9000, 9001):
        with socket.socket() as sock:
            if reason is None and sock.connect_ex(("127.0.0.1", port)) == 0:
                reason = f"port {port} is in use (a team stack already running?)"
    return reason and f"the team stack cannot start here: {reason}"


def _dagshub() -> str | None:
    missing = [name for name in ("DAGSHUB_USER", "DAGSHUB_TOKEN", "DAGSHUB_REPO") if not os.environ.get(name)]
    if missing:
        return f"needs a DagsHub account: set {', '.join(missing)}"
    try:
        urllib.request.urlopen("https://dagshub.com", timeout=5).close()
    except OSError as exc:
        return f"dagshub.com not reachable ({exc})"
    return None


SERVICES: dict[str, Callable[[], str | None]] = {"docker": _docker, "stack": _stack, "dagshub": _dagshub}
BLOCKS = [block for page in PAGES for block in console_blocks(page)]


def own_environment(page: Path) -> bool:
    return OWN_ENVIRONMENT in page.read_text(encoding="utf-8")


def page_env(project: Path, needs: str | None, own: bool = False) -> dict[str, str]:
    """A user's shell in the copy: the project's environment, `make` using this test run's venv (no install), or
    with ``own`` the copy's own .venv (made by its first `make`)."""
    env = project_env(project)
    if needs != "dagshub":  # a developer's own DagsHub account must not change what the offline blocks show
        env = {k: v for k, v in env.items() if not k.startswith("DAGSHUB_")}
    if own:
        env["PATH"] = f"{project / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        env["MAKEFLAGS"] = f"UV={uv_path()}"
        env["UV"] = uv_path()  # the copy's own tests run make in copies of it, with this uv
        env["PYTEST_ARGS"] = NESTED_TESTS
    else:
        env["MAKEFLAGS"] = f"VENV={Path(env['PATH'].split(os.pathsep)[0]).parent} UV={uv_path()}"
    # As a user's `make run` does, start the stage worker (seconds per stage saved); it is stopped with the copy.
    env.update(WORKER="1", WORKER_IDLE="120")
    env.pop("MAKELEVEL", None)
    return env


def stop_background(project: Project) -> None:
    """Stop what the page's commands left running: the processes whose pids are in ``*.pid`` at the copy's root."""
    import signal

    for pid_file in project.root.glob("*.pid"):
        with contextlib.suppress(ValueError, IndexError, ProcessLookupError, PermissionError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def stop_worker(project: Project) -> None:
    """Stop the stage worker `make run` started in the copy."""
    stop = [sys.executable, "-P", "src/mlpipeline/runtimes/zygote.py", "stop"]
    env = page_env(project.root, None)
    subprocess.run(stop, cwd=project.root, env=env, capture_output=True, check=False, timeout=60)


def run_block(block: Block, project: Project) -> None:
    """Run the block's commands in order; fail naming the page line when a status or an output differs."""
    env = page_env(project.root, block.needs, own_environment(block.page))
    for command in block.commands:
        done = subprocess.run(
            ["bash", "-c", command.text],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        where = f"{block.page.relative_to(REPO)}:{command.line}: $ {command.text}"
        if done.returncode != command.status:
            pytest.fail(f"{where}\nexit {done.returncode}, not {command.status}:\n{done.stdout}")
        shown = "\n".join(command.output)
        if command.output and not matches(command.output, done.stdout):
            pytest.fail(f"{where}\nthe output differs from the page.\n--- shown:\n{shown}\n--- actual:\n{done.stdout}")


# One test per page, its blocks in order as subtests: a page's commands build on each other in one copy, and a
# test is the unit pytest-xdist never splits across workers.
@pytest.mark.integration
@pytest.mark.parametrize("page", sorted({block.page for block in BLOCKS}), ids=lambda page: page.stem)
def test_documented_commands_run_as_shown(
    page: Path, subtests: pytest.Subtests, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project: Project | None = None
    failed: str | None = None
    try:
        for block in (b for b in BLOCKS if b.page == page):
            with subtests.test(msg=block.id):
                if failed:
                    pytest.skip(f"an earlier command of {page.name} failed ({failed})")
                if block.needs:
                    known = ", ".join(SERVICES)
                    assert block.needs in SERVICES, f"{block.id}: unknown service {block.needs!r} (known: {known})"
                    reason = SERVICES[block.needs]()
                    if reason:
                        pytest.skip(f"{block.id} needs {block.needs}: {reason}")
                if project is None:
                    project = Project(copy_project(tmp_path_factory.mktemp(page.stem)))
                failed = block.id  # until every command of the block has done what the page says
                run_block(block, project)
                failed = None
                if own_environment(page):
                    report_touched(block, project, tmp_path_factory)
    finally:
        if project is not None:
            stop_background(project)
            stop_worker(project)


def report_touched(block: Block, project: Project, factory: pytest.TempPathFactory) -> None:
    """Record the files the page's blocks so far left changed (the terminal summary prints them)."""
    listed = project.run("git", "status", "--porcelain", "--untracked-files=all", "--", ".", ":!dvc.lock").stdout
    files = sorted(line[3:] for line in listed.splitlines() if line.strip())
    report = factory.getbasetemp() / TOUCHED_REPORT
    with report.open("a", encoding="utf-8") as handle:
        handle.write(f"{block.id}: {len(files)} files changed since the copy: {', '.join(files) or '-'}\n")


TOUCHED_REPORT = "docs-files-touched.txt"


# ---- what the pages say exists ----


def test_every_page_has_commands_and_is_listed_in_the_index() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"
            assert console_blocks(page), f"{page.name} has no console block: nothing of it is tested"
    assert "](docs/README.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_commands_are_only_in_console_blocks() -> None:
    for page in PAGES:
        for start, lang, _, _ in fenced(page):
            assert lang not in ("bash", "sh", "shell", "shell-session", ""), (
                f"{page.name}:{start}: a ```{lang} block is never run; write commands as ```console with `$ `"
            )


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_resolves() -> None:
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: link {target} points to nothing"
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved), f"{page.name}: link {target}: no such heading"


def test_every_make_target_and_cli_command_exists() -> None:
    import typer.main

    from mlpipeline.cli import app

    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        used = set(re.findall(r"\bmake ([a-z][a-z-]*)", text))
        assert used <= targets, f"{page.name} uses missing make targets: {used - targets}"
        code = " ".join(re.findall(r"```.*?```|`[^`\n]+`", text, re.DOTALL))  # "mlpipeline works" is prose
        called = set(re.findall(r"\bmlpipeline ([a-z][a-z-]*)", code))
        assert called <= commands, f"{page.name} uses missing mlpipeline commands: {called - commands}"


def test_the_matcher() -> None:
    assert matches(["a", "...", "c ... e"], "a\nb\n\nb2\nc  d\te  \n")
    assert not matches(["a...c"], "ab\nc\n")
    assert matches(["..."], "")
    assert not matches(["a"], "a\nb\n")
    assert not matches(["c ... e"], "c d f\n")
    assert matches(["[x]"], "[x]\n")
    assert Command(1, "false", ["out", "[2]"]).status == 2
    assert Command(1, "false", ["out", "[2]"]).output == ["out"]
    assert Command(1, "true", ["out"]).output == ["out"]
