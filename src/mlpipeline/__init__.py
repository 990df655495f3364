"""mlpipeline: a reproducible ML pipeline (ingest -> validate -> preprocess -> train -> evaluate -> promote)."""

__version__ = "0.1.0"
