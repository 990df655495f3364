"""mlpipeline: a reproducible ML pipeline whose stages dvc.yaml describes (`dvc dag` draws them)."""

__version__ = "0.1.0"
