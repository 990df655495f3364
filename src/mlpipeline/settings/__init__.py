"""Typed configuration: ``params.yaml`` sections as frozen pydantic models, secrets/endpoints from the environment.

Every section forbids unknown keys, so a misspelt or ill-typed parameter fails before any stage does work. A
stage is handed only its own section (``load_params(path).train``), but the whole file is checked each time, so
a typo anywhere stops the pipeline at the first stage that runs rather than halfway through. The file itself is
read strictly: a missing or empty file, a duplicate key or a YAML syntax error is an error naming the line and
column, never a silent fallback to defaults.

The environment (and the project's git-ignored ``.env``) is read by one model, :class:`EnvSettings`, everywhere.

Example:
    >>> params = Params()  # the embedded defaults, identical to the committed params.yaml
    >>> params.train.model
    'random_forest'
"""

from mlpipeline.settings.env import EnvSettings, env_settings, project_root
from mlpipeline.settings.loading import (
    load_params,
    load_yaml,
    missing_interpolated_keys,
    parse_params,
    read_config_text,
    stage_names,
)
from mlpipeline.settings.params import (
    DEFAULT_PARAMS_FILE,
    DEFAULT_TRACKING_URI,
    MAX_AUTO_CLASSES,
    SKLEARN_DATASETS,
    SOURCE_SUFFIXES,
    SOURCES_DIR,
    SYNTHETIC_MAX_ROWS,
    SYNTHETIC_PREFIX,
    CategoricalDrift,
    DriftTest,
    EvaluateParams,
    IngestParams,
    MonitorParams,
    Name,
    NumericDrift,
    Params,
    PreprocessParams,
    PromoteParams,
    Section,
    Task,
    TrainParams,
    ValidateParams,
    synthetic_rows,
)

__all__ = [
    "DEFAULT_PARAMS_FILE",
    "DEFAULT_TRACKING_URI",
    "MAX_AUTO_CLASSES",
    "SKLEARN_DATASETS",
    "SOURCES_DIR",
    "SOURCE_SUFFIXES",
    "SYNTHETIC_MAX_ROWS",
    "SYNTHETIC_PREFIX",
    "CategoricalDrift",
    "DriftTest",
    "EnvSettings",
    "EvaluateParams",
    "IngestParams",
    "MonitorParams",
    "Name",
    "NumericDrift",
    "Params",
    "PreprocessParams",
    "PromoteParams",
    "Section",
    "Task",
    "TrainParams",
    "ValidateParams",
    "env_settings",
    "load_params",
    "load_yaml",
    "missing_interpolated_keys",
    "parse_params",
    "project_root",
    "read_config_text",
    "stage_names",
    "synthetic_rows",
]
