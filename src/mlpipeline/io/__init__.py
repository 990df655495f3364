"""The boundary to the outside: files, data sources, the MLflow tracking store and registry, the DVC remote."""
