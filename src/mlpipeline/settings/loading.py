"""Reading params.yaml strictly: YAML with duplicate keys refused, every bad key named (with a "did you mean"),
your own stages' sections allowed, interpolated keys checked."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlpipeline.errors import ConfigError
from mlpipeline.settings.params import DEFAULT_PARAMS_FILE, Params


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """`` (did you mean 'test_size'?)`` for a misspelt key of a params section, or nothing."""
    import difflib

    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    names = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(error: ValidationError, path: Path, prefix: str = "") -> str:
    problems = []
    for item in error.errors():
        key = prefix + ".".join(str(part) for part in item["loc"]).replace("validate_", "validate")
        key = key.replace(".[key]", "")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'{_did_you_mean(item['loc'])}")
        elif item["type"] == "literal_error":
            problems.append(f"'{key}': {item['msg'].lower()}, got {item['input']!r}")
        elif item["type"] == "value_error" and not key:  # a rule across sections: its message names the keys
            problems.append(str(item["ctx"]["error"]))
        elif item["type"] == "value_error":
            problems.append(f"'{key}' {item['input']!r}: {item['ctx']['error']!s}")
        else:
            problems.append(f"'{key}': {item['msg'].lower()} (got {item.get('input')!r})")
    return f"{path}: " + "; ".join(problems) + ". Fix params.yaml (see README 'Parameters')."


def parse_params(data: Any, path: Path = DEFAULT_PARAMS_FILE, sections: Collection[str] = ()) -> Params:
    """Validate already-loaded YAML data; raise ConfigError naming every bad key. ``sections``: the names of
    your own stages (dvc.yaml's), whose sections may be there too."""
    if data is None:
        raise ConfigError(f"{path} is empty: it must hold the sections ingest, validate, preprocess, train, ...")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (ingest, validate, ...), got {type(data).__name__}")
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, path)) from exc
    extra = params.model_extra or {}
    unknown = [name for name in extra if name not in sections]
    if unknown:
        raise ConfigError(
            f"{path}: "
            + "; ".join(f"unknown key '{name}'" for name in unknown)
            + f" (the sections are {', '.join(f.alias or n for n, f in Params.model_fields.items())}, and one per "
            "stage of your own in dvc.yaml). Fix params.yaml (see README 'Parameters')."
        )
    bad = [name for name, value in extra.items() if value is not None and not isinstance(value, dict)]
    if bad:
        raise ConfigError(f"{path}: section {bad[0]!r} must be a mapping of keys. Fix params.yaml")
    return params


def load_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML strictly: a duplicate key or a syntax error is a ConfigError naming ``path:line:column``."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        loader.flatten_mapping(node)
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key, e.g. a list; the base constructor names it
                break
            if seen is not None:
                raise ConfigError(
                    f"{path}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r} (first on line {seen}); "
                    "keep one of them"
                )
            first[key] = mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: YAML syntax error: {problem}. Fix the syntax") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax") from exc


def read_config_text(path: Path, what: str, fix: str) -> str:
    """The text of a configuration file; ConfigError naming it (and ``fix``) when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file {path} not found: {fix}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc}") from exc


def stage_names(dvc_yaml: Path) -> list[str]:
    """The stage names of a dvc.yaml (none when there is no readable one): the sections of your own stages."""
    import yaml

    try:
        data = yaml.load(dvc_yaml.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return []
    stages = data.get("stages") if isinstance(data, dict) else None
    return [str(name) for name in stages] if isinstance(stages, dict) else []


def load_params(path: Path = DEFAULT_PARAMS_FILE, dvc_yaml: Path | None = None) -> Params:
    """Read and validate a params file; a missing or empty one is an error, never the defaults in disguise.

    A section named after a stage of ``dvc_yaml`` (by default the one beside the file) is a stage of your own's
    (its keys are checked by that stage, and by check-params)."""
    text = read_config_text(path, "params", "run from the project root, or pass --params")
    return parse_params(load_yaml(text, path), path, stage_names(dvc_yaml or path.parent / "dvc.yaml"))


def missing_interpolated_keys(params_text: str, dvc_yaml_text: str) -> list[str]:
    """Keys dvc.yaml interpolates (``${ingest.name}``) that the params file does not set itself.

    DVC reads them from the file, not from our defaults, so they must be spelled out there.
    """
    data = load_yaml(params_text, DEFAULT_PARAMS_FILE) or {}
    missing = []
    for key in sorted(set(re.findall(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}", dvc_yaml_text))):
        node: Any = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(key)
    return missing
