"""Check params: the first stage, so a mistake in params.yaml stops the pipeline before DVC touches an output.

DVC deletes a stage's outputs just before running it; a stage that then rejects its params has already lost
them. Every stage depends on this stage's marker file and this stage depends on the whole params file, so after
any change to params.yaml this check runs first, and a bad file fails here with every output intact. The marker
never changes, so a good change reruns only the stages that use the changed keys.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlpipeline.errors import ConfigError
from mlpipeline.io.files import write_json
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, load_params, missing_interpolated_keys

logger = logging.getLogger(__name__)

DVC_YAML = Path("dvc.yaml")


def check_sections(params: Params, path: Path = Path("params.yaml")) -> None:
    """The train section against the estimator and feature registries, and each section of a stage of your own
    against the model its module declares (``PARAMS``); ConfigError naming the key (and ``path``)."""
    from mlpipeline.core.estimators import hyperparams
    from mlpipeline.stages import own_section

    try:
        hyperparams(params.train)
        for name in params.model_extra or {}:
            own_section(params, name)
    except ConfigError as exc:
        message = str(exc)
        if path.as_posix() == "params.yaml" or not message.startswith("params.yaml: "):
            raise
        raise ConfigError(f"{path}: {message.removeprefix('params.yaml: ')}") from exc


def check_file(params_file: Path, dvc_yaml: Path = DVC_YAML) -> Params:
    """Validate ``params_file`` whole, including the keys dvc.yaml interpolates; raise ConfigError naming each."""
    params = load_params(params_file, dvc_yaml)
    check_sections(params, params_file)
    if dvc_yaml.is_file():
        missing = missing_interpolated_keys(params_file.read_text(encoding="utf-8"), dvc_yaml.read_text("utf-8"))
        if missing:
            raise ConfigError(
                f"{params_file}: {', '.join(repr(k) for k in missing)} must be set in the file itself: dvc.yaml "
                "uses it to name files. Add it (see README 'Parameters')"
            )
    return params


def main(params: Params, paths: Paths) -> None:
    """The DVC stage: check the whole file (already parsed by the runner) and write the constant marker."""
    check_file(paths.params)
    write_json(paths.out("params_check"), {"params": paths.params.as_posix(), "valid": True})
    logger.info("%s is valid", paths.params)
