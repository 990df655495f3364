"""``mlpipeline new stage NAME --after A [--before B]``: a stage of your own, working at once (see docs/adapt.md).

Writes three files and nothing else: the module ``src/mlpipeline/stages/NAME.py``, its dvc.yaml entry and, with
``--param key=value``, its section of params.yaml (checked by the ``PARAMS`` model the module declares).

- ``--after A`` alone: the stage reads A's outputs and writes ``reports/NAME.json`` (a summary of them).
- ``--before B`` too: it sits between A and B. It reads the outputs of A that B read, writes each under
  ``data/NAME/`` with the same key, and B's dvc.yaml entry now lists those instead: B reads the new stage's files
  without a code change (a stage asks for its files by key). The module passes them through unchanged: put your
  step in its ``main``.

The stage runs in A's environment (``requirements/<env>.txt``, its image), unless ``--own-env`` gives it a
dependency group of its own (a copy of A's; ``make add PACKAGE=... FOR=NAME`` adds to it).
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

from mlpipeline.adapt.scaffold import _name, class_name, field_line, parse_pairs
from mlpipeline.errors import ConfigError
from mlpipeline.io.files import write_text

STAGES_DIR = Path("src/mlpipeline/stages")

HEADER = '''"""{title}: written by `mlpipeline new stage {name}`; change it to do your step.

{about}
"""

from __future__ import annotations

import logging
{stdlib}
from mlpipeline.io.files import {files}
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, Section

logger = logging.getLogger(__name__)


class {params_class}(Section):
    """The `{name}:` section of params.yaml: check-params refuses a key not declared here (add a key here, under
    `{name}:` in params.yaml, and `- {name}` under `params:` in its dvc.yaml entry)."""{fields}


PARAMS = {params_class}


'''

THROUGH = '''def copy(source: Path, target: Path) -> None:
    """``source`` to ``target``, atomically (a folder with its files)."""
    with atomic_path(target) as tmp:
        if source.is_dir():
            shutil.copytree(source, tmp)
        else:
            shutil.copyfile(source, tmp)


def main(params: Params, paths: Paths) -> None:
    """The DVC stage: each input to its output, unchanged. Put your step here (read, change, write atomically)."""
    mine = params.section("{name}", PARAMS)
{copies}
    logger.info("{name}: %d files passed through (%s)", {count}, mine)
'''

SUMMARY = '''def main(params: Params, paths: Paths) -> None:
    """The DVC stage: a summary of its inputs (size and md5 of each). Put your step here."""
    mine = params.section("{name}", PARAMS)
    inputs = {{{inputs}}}
    summary = {{key: {{"bytes": path.stat().st_size, "md5": md5(path)}} for key, path in inputs.items()}}
    write_json(paths.out("{name}"), summary)
    logger.info("{name}: %d inputs summarized in %s (%s)", len(summary), paths.out("{name}"), mine)
'''


def _yaml() -> Any:
    from mlpipeline.adapt.codedeps import _yaml as dvc_yaml

    return dvc_yaml()


def _spelled(entry: Any) -> list[tuple[str, Any]]:
    """The outputs of a raw dvc.yaml entry as written (``${...}`` kept), with their options, in graph order."""
    from mlpipeline.graph import OUT_KINDS

    found = []
    for kind in OUT_KINDS:
        for item in entry.get(kind) or []:
            found.append(
                (str(next(iter(item))), item[next(iter(item))]) if isinstance(item, dict) else (str(item), None)
            )
    return found


def module_text(name: str, deps: list[str], outs: list[str], between: bool, params: dict[str, Any]) -> str:
    """The source of the new stage's module (lint-clean, typed)."""
    about = (
        f"It reads its inputs by key ({', '.join(deps)}) and writes its outputs by key ({', '.join(outs)}), as its "
        f"dvc.yaml entry lists them; DVC reruns it when they, its code{' or its params section' if params else ''} "
        f"change. `mlpipeline {name}` runs it alone."
    )
    head = HEADER.format(
        title=name.replace("_", " ").capitalize(),
        name=name,
        about=textwrap.fill(about, width=116),
        stdlib="import shutil\nfrom pathlib import Path\n" if between else "",
        files="atomic_path" if between else "md5, write_json",
        params_class=class_name(name, "Params"),
        fields="".join(f"\n{field_line(key, value)}" for key, value in params.items()),
    )
    if between:
        copies = "\n".join(f'    copy(paths.dep("{key}"), paths.out("{key}"))' for key in outs)
        return head + THROUGH.format(name=name, copies=copies, count=len(outs))
    inputs = ", ".join(f'"{key}": paths.dep("{key}")' for key in deps)
    return head + SUMMARY.format(name=name, inputs=inputs)


def _placed(name: str, after: str, before: str | None, root: Path) -> tuple[list[tuple[Any, str]], str]:
    """The outputs of ``after`` the new stage reads (resolved, as spelled) and its environment's name."""
    from mlpipeline.graph import load

    graph = load(root)
    if name in graph.names:
        raise ConfigError(f"dvc.yaml has a stage {name!r} already")
    first = graph.stage(after)
    if before is not None and after not in graph.upstream(graph.stage(before).name):
        raise ConfigError(f"{before!r} reads nothing of {after!r}: a stage between them would have no input")
    raw = _yaml().load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][after]
    outs = list(zip(first.outs, [spelled for spelled, _ in _spelled(raw)], strict=True))
    if before is not None:
        outs = [(out, spelled) for out, spelled in outs if out.path in graph.stage(before).deps]
    if not outs:
        raise ConfigError(f"{after!r} has no outputs in dvc.yaml for a stage after it to read")
    if first.env is None:
        raise ConfigError(f"{after!r} lists no requirements/<env>.txt: the new stage would have no environment")
    return outs, first.env


def _entry(name: str, inputs: list[str], outs: list[tuple[str, Any]], env: str, params: bool, root: Path) -> Any:
    from ruamel.yaml.comments import CommentedMap

    from mlpipeline.graph import load

    marker = [o.path for s in load(root).stages if s.name == "check-params" for o in s.outs]
    entry = CommentedMap(cmd=f"sh bin/stage {name}")
    entry["deps"] = [*marker, *inputs, f"requirements/{env}.txt"]
    if params:
        entry["params"] = [name]
    entry["outs"] = [spelled if meta is None else {spelled: meta} for spelled, meta in outs]
    return entry


def new_stage(
    name: str, after: str, before: str | None = None, params: list[str] | None = None, own_env: bool = False,
    root: Path = Path("."),
) -> list[Path]:  # fmt: skip
    """Write the stage's module, its dvc.yaml entry (and B's rewired deps) and its params section; fill its code
    deps. Returns the files written."""
    from mlpipeline.adapt import codedeps

    _name(name, "stage")
    module = root / STAGES_DIR / f"{name}.py"
    if module.exists():
        raise ConfigError(f"{module} exists already")
    values = parse_pairs(params or [], "--param")
    inputs, env = _placed(name, after, before, root)
    if before is not None:  # each input under data/<name>/, same key (a varying name keeps its meta key)
        outs = [(f"data/{name}/{spelled.rsplit('/', 1)[-1]}", _meta(out)) for out, spelled in inputs]
    else:
        outs = [(f"reports/{name}.json", None)]
    yaml = _yaml()
    data = yaml.load((root / "dvc.yaml").read_text(encoding="utf-8"))
    stages = data["stages"]
    entry = _entry(name, [spelled for _, spelled in inputs], outs, name if own_env else env, bool(values), root)
    position = list(stages).index(after) + 1
    stages.insert(position, name, entry)
    if position + 1 < len(stages):  # a blank line between it and the next stage, as between the others
        stages.yaml_set_comment_before_after_key(list(stages)[position + 1], before="\n")
    if before is not None:
        renamed = {spelled: out for (_, spelled), (out, _) in zip(inputs, outs, strict=True)}
        deps = stages[before]["deps"]
        for i, dep in enumerate(deps):
            deps[i] = renamed.get(str(dep), dep)
    keys = [out.key for out, _ in inputs] if before is not None else [name]
    write_text(module, module_text(name, [out.key for out, _ in inputs], keys, before is not None, values))
    written = [module, root / "dvc.yaml"]
    text = io.StringIO()
    yaml.dump(data, text)
    write_text(root / "dvc.yaml", text.getvalue())
    if values:
        from mlpipeline.adapt.paramsfile import set_params

        params_file = root / "params.yaml"
        write_text(params_file, set_params(params_file.read_text(encoding="utf-8"), {name: values}))
        written.append(params_file)
    if own_env:
        written += _own_env(name, env, root)
    codedeps.write(root)
    return written


def _meta(out: Any) -> dict[str, Any] | None:
    from mlpipeline.graph import file_key

    return {"meta": {"key": out.key}} if out.key != file_key(out.path) else None


def _own_env(name: str, like: str, root: Path) -> list[Path]:
    """A dependency group ``name`` holding what ``like``'s does, and its requirements file."""
    import tomllib

    from mlpipeline.adapt import envs

    specs = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["dependency-groups"].get(like, [])
    for spec in specs:
        envs._uv(root, "add", "--no-sync", "--group", name, spec)
    envs.lock(root)
    return [root / "pyproject.toml", root / "uv.lock", root / "requirements" / f"{name}.txt"]
