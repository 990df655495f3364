"""An experiment's ``-S key=value`` overrides, checked before ``dvc exp run`` starts (``make exp`` does this).

DVC applies ``-S`` overrides to params.yaml only once the experiment runs; a misspelt key or a bad value would
then fail mid-pipeline. Here DVC's own override code (Hydra syntax, sweeps included) is applied to a copy of
the file, and every combination is checked as the check-params stage would check it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mlpipeline.errors import ConfigError
from mlpipeline.settings import load_params
from mlpipeline.stages.check_params import DVC_YAML, check_file


def check_with_overrides(params_file: Path, set_params: list[str], dvc_yaml: Path = DVC_YAML) -> int:
    """Check the params an experiment would run with: the file plus DVC's ``-S key=value`` overrides.

    Overrides are applied by DVC's own code (Hydra syntax, sweeps included), to a copy of the file; every
    combination a sweep expands to is checked. Returns how many combinations were checked.
    """
    if not set_params:
        check_file(params_file, dvc_yaml)
        return 1
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    by_file = to_path_overrides(set_params)
    others = sorted(set(by_file) - {str(params_file), params_file.name})
    if others:
        raise ConfigError(f"-S sets keys in {', '.join(others)}; the pipeline's parameters are in {params_file}")
    overrides = {str(params_file): [o for group in by_file.values() for o in group]}
    try:
        sweeps = get_hydra_sweeps(overrides)
    except InvalidArgumentError as exc:
        raise ConfigError(f"-S {' '.join(set_params)}: {exc}") from exc
    load_params(params_file)  # the file itself first, so its own mistakes are named as such
    with tempfile.TemporaryDirectory(prefix="mlpipeline-params-") as tmp:
        for combination in sweeps:
            candidate = Path(tmp) / params_file.name
            shutil.copyfile(params_file, candidate)
            try:
                apply_overrides(candidate, next(iter(combination.values())))
            except InvalidArgumentError as exc:
                cause = exc.__cause__ or exc
                raise ConfigError(
                    f"-S {' '.join(next(iter(combination.values())))}: {str(cause).splitlines()[0]} "
                    f"(a new key needs a leading '+'; check the spelling against {params_file})"
                ) from exc
            try:
                check_file(candidate, dvc_yaml)
            except ConfigError as exc:
                shown = str(exc).replace(str(candidate), f"{params_file} with -S {' '.join(set_params)}")
                raise ConfigError(shown) from exc
    return len(sweeps)
