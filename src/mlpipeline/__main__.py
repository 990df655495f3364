"""`python -m mlpipeline` is the same as the `mlpipeline` console script (dvc.yaml uses this form)."""

from mlpipeline.cli import run

run()
