"""Changing the project: its code deps in dvc.yaml, its environments, and scaffolds for a stage, an estimator or a
feature transform (``mlpipeline deps``, ``mlpipeline lock``/``add``, ``mlpipeline new``; see docs/adapt.md)."""
