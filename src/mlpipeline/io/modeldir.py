"""A model on disk: an MLflow model directory whose bytes depend only on the model, never on when or where it
was saved.

``models/model`` is a DVC output, so it must be byte-identical for the same inputs (otherwise dvc.lock changes on
every fresh clone). MLflow's own ``save_model`` writes per-save facts (a random model UUID, the time, the exact
Python patch version and build tools of the machine), and skops names its array files after memory addresses
and stamps zip entries with the time. :func:`save` writes the directory with MLflow (so ``mlflow models serve -m
models/model`` and ``mlflow.sklearn.load_model`` work as usual), then makes it canonical: per-save facts
removed, environment files reduced to what the lockfile decides, the skops archive rewritten with ids numbered
in order of appearance, sorted entries and fixed timestamps. The registry gets these same bytes (see
``tracking.log_model_dir``), so the model a version serves is the file DVC recorded.

Loading accepts only the skops format with a fixed allow-list of types (the estimator registry's, in code), so
it never runs code from a file.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from mlpipeline.core.estimators import trusted_types
from mlpipeline.core.schema import Schema
from mlpipeline.errors import MlpipelineError
from mlpipeline.io.files import atomic_dir, md5

MODEL_FILE = "model.skops"
# Facts about one save, not about the model: a model directory must not carry them.
PER_SAVE_KEYS = ("utc_time_created", "model_uuid", "run_id", "model_id", "artifact_path", "model_size_bytes")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_skops(data: bytes) -> bytes:
    """The same skops archive with deterministic bytes: object ids and file names numbered in order of first
    appearance in the schema, entries sorted, timestamps fixed. Loading it gives the same object."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def renumber(node: Any) -> None:
            if isinstance(node, dict):
                if "__id__" in node:
                    node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
                if isinstance(node.get("file"), str):
                    old = node["file"]
                    node["file"] = files.setdefault(old, f"{len(files) + 1}{Path(old).suffix}")
                for value in node.values():
                    renumber(value)
            elif isinstance(node, list):
                for value in node:
                    renumber(value)

        renumber(schema)
        entries = {new: source.read(old) for old, new in files.items()}
    entries["schema.json"] = json.dumps(schema, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    return out.getvalue()


def _python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _canonical_env_files(path: Path) -> None:
    """Environment files that depend only on the lockfile: Python as major.minor, unpinned build tools."""
    import yaml

    mlmodel = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
    for key in PER_SAVE_KEYS:
        mlmodel.pop(key, None)
    pyfunc = mlmodel.get("flavors", {}).get("python_function", {})
    if "python_version" in pyfunc:
        pyfunc["python_version"] = _python()
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel, default_flow_style=False), encoding="utf-8")
    python_env = path / "python_env.yaml"
    if python_env.is_file():
        env = yaml.safe_load(python_env.read_text(encoding="utf-8"))
        env["python"] = _python()
        env["build_dependencies"] = ["pip", "setuptools", "wheel"]
        python_env.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
    conda = path / "conda.yaml"
    if conda.is_file():
        env = yaml.safe_load(conda.read_text(encoding="utf-8"))
        env["dependencies"] = [
            f"python={_python()}" if isinstance(d, str) and d.startswith("python=") else d
            for d in env.get("dependencies", [])
        ]
        conda.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")


def signature(schema: Schema, example: Any, model: Any) -> Any:
    """The model's MLflow signature: every input column with its type (text for categories), optional where the
    contract allows missing values, and the prediction's type."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec
    from mlflow.types import Schema as ColumnSchema

    inputs = ColumnSchema(
        [
            ColSpec("string" if info.kind == "categorical" else "double", name, required=not info.nullable)
            for name, info in schema.features.items()
        ]
    )
    return ModelSignature(inputs=inputs, outputs=infer_signature(example, model.predict(example)).outputs)


def save(model: Any, path: Path, example: Any, schema: Schema) -> str:
    """Write ``model`` as a canonical MLflow model directory at ``path`` (atomically); return its file's md5.

    ``example`` (a few input rows, as the model takes them) gives the input example; the schema (task, feature
    kinds and categories, class code -> name) gives the signature and goes into the metadata, so a server can
    type its requests and name its predictions.
    """
    import mlflow.sklearn
    import skops.io

    trusted = trusted_types()
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(model))) - set(trusted)
    if untrusted:
        raise MlpipelineError(
            f"the model holds types our loader does not trust: {sorted(untrusted)}. If they are your estimator's "
            "own, list them in its `trusted=` in ESTIMATORS (src/mlpipeline/core/estimators.py): the loader rebuilds "
            "only the types listed there, so a model file can never run code"
        )
    complete = example.dropna()  # an input example with gaps would not survive MLflow's JSON round trip
    with atomic_dir(path) as tmp:
        mlflow.sklearn.save_model(
            model,
            str(tmp),
            serialization_format="skops",
            skops_trusted_types=trusted,
            signature=signature(schema, example, model),
            input_example=complete if len(complete) else None,
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            metadata=schema.to_metadata(),
        )
        model_file = tmp / MODEL_FILE
        model_file.write_bytes(canonical_skops(model_file.read_bytes()))
        _canonical_env_files(tmp)
    return md5(path / MODEL_FILE)


def read_mlmodel(path: Path) -> dict[str, Any]:
    """The MLmodel file of a local model directory (flavors, signature, metadata)."""
    import yaml

    try:
        meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MlpipelineError(f"{path} is not an MLflow model directory ({exc})") from exc
    if not isinstance(meta, dict):
        raise MlpipelineError(f"{path}/MLmodel is not a mapping")
    return meta


def load(path: Path) -> Any:
    """Load a scikit-learn model saved by this project from a local MLflow model directory.

    Only the skops format is accepted, with our fixed allow-list of types, so loading never runs code from the
    artifact (MLflow's own loader would need MLFLOW_ALLOW_PICKLE_DESERIALIZATION for that).
    """
    import skops.io

    try:
        flavor = read_mlmodel(path)["flavors"]["sklearn"]
    except (KeyError, TypeError) as exc:
        raise MlpipelineError(f"{path} is not an MLflow scikit-learn model directory ({exc})") from exc
    if flavor.get("serialization_format") != "skops":
        raise MlpipelineError(f"{path}: refusing to load a {flavor.get('serialization_format')!r} model; only skops")
    try:
        return skops.io.load(path / flavor["pickled_model"], trusted=trusted_types())
    except Exception as exc:  # skops raises its own and pickle-level errors for a damaged file
        raise MlpipelineError(f"cannot load model from {path}: {exc}") from exc


def schema_from_metadata(metadata: dict[str, Any] | None, where: str) -> Schema:
    """The schema a model was trained with, from its MLmodel ``metadata``."""
    from pydantic import ValidationError

    try:
        return Schema.model_validate(metadata or {})
    except ValidationError as exc:
        raise MlpipelineError(
            f"{where} has no input schema in its metadata (a model from before schemas): retrain it (`make run`)"
        ) from exc


def schema_of(path: Path) -> Schema:
    """The schema of a local model directory."""
    return schema_from_metadata(read_mlmodel(path).get("metadata"), str(path))
