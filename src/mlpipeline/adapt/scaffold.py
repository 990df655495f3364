"""``mlpipeline new``: the files a new stage, estimator or feature transform needs, written so they work at once.

- ``new stage NAME --after A [--before B] [--param key=value]``: the module ``src/mlpipeline/stages/NAME.py``
  (a ``main(params, paths)`` that passes its inputs through, to be made yours), its dvc.yaml entry (A's outputs in,
  its own out; with ``--before``, B reads its outputs instead of A's: the stage sits in between; code deps written
  by ``mlpipeline deps``) and, with params, its section in params.yaml and the model that checks it.
- ``new estimator NAME --classifier mod:Class --regressor mod:Class [--param key]...``: one entry in
  :data:`mlpipeline.core.estimators.ESTIMATORS`, whose trusted types are found by fitting it here on Iris and on
  the diabetes data; it warns when two fits do not give the same bytes.
- ``new transform NAME EXPRESSION``: one entry in :data:`mlpipeline.core.features.TRANSFORMS` computing
  ``EXPRESSION`` over the input columns it names (``petal_length_cm * petal_width_cm``).

Each refuses a name already taken and writes nothing when anything is wrong.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from mlpipeline.errors import ConfigError
from mlpipeline.io.files import write_text

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ESTIMATORS_FILE = Path("src/mlpipeline/core/estimators.py")
FEATURES_FILE = Path("src/mlpipeline/core/features.py")


def _name(name: str, what: str) -> str:
    if not NAME.match(name):
        raise ConfigError(f"{what} name {name!r}: use lower case letters, digits and _ (e.g. clip_outliers)")
    return name


def _value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``["key=value", ...]`` with YAML values (``3`` an int, ``0.5`` a float, ``true`` a bool)."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ConfigError(f"{what} {pair!r}: write key=value (e.g. quantile=0.01)")
        found[key] = _value(value)
    return found


def field_line(key: str, value: Any) -> str:
    """A pydantic field with the type of ``value`` and it as the default."""
    kind = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value))
    if value is None:
        return f"    {key}: float | None = None"
    if kind is None:
        raise ConfigError(f"{key}={value!r}: a value must be a number, true/false or text")
    return f"    {key}: {kind} = {value!r}"


def class_name(name: str, suffix: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + suffix


def append(path: Path, code: str) -> None:
    """Append ``code`` to a module, after checking the result still parses."""
    text = path.read_text(encoding="utf-8").rstrip("\n") + "\n\n\n" + code.strip("\n") + "\n"
    ast.parse(text)
    write_text(path, text)


def expression_inputs(expression: str) -> list[str]:
    """The column names an expression of columns uses, in order (``a * b`` -> ``[a, b]``)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{expression!r} is not an expression of columns: {exc.msg}") from exc
    allowed: tuple[type, ...] = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Name)
    allowed += (ast.Constant, ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ConfigError(
                f"{expression!r}: only columns, numbers and + - * / ** < > == and or are allowed here; write "
                "anything else as a function in src/mlpipeline/core/features.py"
            )
    return list(dict.fromkeys(node.id for node in ast.walk(tree) if isinstance(node, ast.Name)))


def new_transform(name: str, expression: str, kind: str, root: Path = Path(".")) -> Path:
    """Append a feature transform computing ``expression`` to core/features.py."""
    from mlpipeline.core.features import TRANSFORMS

    _name(name, "feature")
    if name in TRANSFORMS:
        raise ConfigError(f"there is a feature transform {name!r} already (src/mlpipeline/core/features.py)")
    if kind not in ("numeric", "categorical"):
        raise ConfigError(f"--kind {kind!r}: use numeric (a categorical feature declares its categories by hand)")
    needs = expression_inputs(expression)
    if not needs:
        raise ConfigError(f"{expression!r} uses no input column")
    schema = root / "data/processed/schema.json"
    if schema.is_file():
        import json

        columns = json.loads(schema.read_text(encoding="utf-8")).get("features", {})
        missing = [column for column in needs if column not in columns]
        if missing:
            raise ConfigError(f"{expression!r} uses {missing}, not input columns of the data ({', '.join(columns)})")
    code = f"""# Added by `mlpipeline new transform {name}`.
TRANSFORMS[{name!r}] = Transform(
    compute=lambda rows: rows.eval({expression!r}),
    needs={tuple(needs)!r},
)"""
    append(root / FEATURES_FILE, code)
    return root / FEATURES_FILE


def _import(spec: str) -> Any:
    import importlib

    module, sep, name = spec.partition(":")
    if not sep:
        raise ConfigError(f"{spec!r}: write module:Class (e.g. lightgbm:LGBMClassifier)")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import {spec}: {exc}. Add its package first: `make add PACKAGE=<package> FOR=model`"
        ) from exc


def _hyperparams(cls: Any, wanted: list[str]) -> dict[str, Any]:
    """Each wanted ``key`` or ``key=value``, with the class's own default unless a value is given."""
    import inspect

    accepted = inspect.signature(cls).parameters
    found: dict[str, Any] = {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in accepted:
            raise ConfigError(f"--param {key}: {cls.__name__} takes no {key!r} (it takes {', '.join(accepted)})")
        default = accepted[key].default
        found[key] = _value(value) if sep else (None if default is inspect.Parameter.empty else default)
    return found


def estimator_code(name: str, classifier: str, regressor: str, hyper: dict[str, Any], fixed: dict[str, Any],
                   generic: list[str], trusted: list[str]) -> str:  # fmt: skip
    """The source of a registry entry."""
    params = class_name(name, "Params")
    fields = "\n".join(field_line(key, value) for key, value in hyper.items()) or "    pass"
    kwargs = [f'        "{key}": b.hyper.{key},' for key in hyper]
    kwargs += [f'        "{key}": {value!r},' for key, value in fixed.items()]
    kwargs += [f'        "{key}": {"b.seed" if key == "random_state" else "1"},' for key in generic]
    listed = "".join(f'\n        "{t}",' for t in trusted)
    return f"""# Added by `mlpipeline new estimator {name}`.
class {params}(Hyperparams):
{fields}


ESTIMATORS[{name!r}] = Estimator(
    {params},
    {classifier!r},
    {regressor!r},
    lambda b: {{
{chr(10).join(kwargs)}
    }},
    trusted=({listed}
    ),
)"""


def _fitted_types(name: str) -> tuple[list[str], bool]:
    """The types skops does not trust in ``name``'s models fitted on Iris and on the diabetes data, and whether
    two fits gave the same bytes."""
    import pandas as pd
    import skops.io
    from sklearn.datasets import load_diabetes, load_iris

    from mlpipeline.core.estimators import trusted_types
    from mlpipeline.core.models import build_model
    from mlpipeline.core.schema import FeatureInfo, Schema
    from mlpipeline.io.modeldir import canonical_skops
    from mlpipeline.settings import TrainParams

    untrusted: set[str] = set()
    same = True
    for task, load in (("classification", load_iris), ("regression", load_diabetes)):
        X, y = load(return_X_y=True, as_frame=True)
        schema = Schema(task=task, features={str(c): FeatureInfo() for c in X.columns})
        fitted = []
        for _ in range(2):
            model = build_model(TrainParams.model_validate({"model": name}), schema)
            model.fit(pd.DataFrame(X, dtype="float64"), y)
            fitted.append(skops.io.dumps(model))
        untrusted |= set(skops.io.get_untrusted_types(data=fitted[0])) - set(trusted_types())
        same = same and canonical_skops(fitted[0]) == canonical_skops(fitted[1])
    return sorted(untrusted), same


def new_estimator(name: str, classifier: str, regressor: str, wanted: list[str], fixed: list[str],
                  root: Path = Path(".")) -> tuple[Path, list[str]]:  # fmt: skip
    """Append a registry entry for ``name`` to core/estimators.py; return the file and the trusted types found."""
    import inspect
    from typing import Annotated

    from pydantic import Field

    from mlpipeline.core import estimators

    _name(name, "estimator")
    if name in estimators.ESTIMATORS:
        raise ConfigError(f"there is an estimator {name!r} already (src/mlpipeline/core/estimators.py)")
    classes = [_import(classifier), _import(regressor)]
    hyper = _hyperparams(classes[0], wanted)
    constants = parse_pairs(fixed, "--fixed")
    accepted = set(inspect.signature(classes[0]).parameters)
    generic: list[str] = [k for k in ("random_state", "n_jobs") if k in accepted and k not in {*hyper, *constants}]
    namespace = {**vars(estimators), "Annotated": Annotated, "Field": Field}
    try:
        # Register the entry as written (but for its trusted types) and fit it, before anything is written.
        exec(estimator_code(name, classifier, regressor, hyper, constants, generic, []), namespace)
        trusted, deterministic = _fitted_types(name)
    finally:
        estimators.ESTIMATORS.pop(name, None)
    append(root / ESTIMATORS_FILE, estimator_code(name, classifier, regressor, hyper, constants, generic, trusted))
    if not deterministic:
        logger.warning(
            "%s gave different model bytes on two fits with the same seed: DVC will see a new model on every run. "
            "Give it its seed or determinism settings with --fixed (e.g. deterministic=true)",
            name,
        )
    return root / ESTIMATORS_FILE, trusted
