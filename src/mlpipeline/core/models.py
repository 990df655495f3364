"""Model construction from typed params."""

from __future__ import annotations

from typing import Any

from mlpipeline.settings import TrainParams


def build_model(params: TrainParams) -> Any:
    """An unfitted scikit-learn classifier for ``params.model``, seeded for determinism."""
    if params.model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=params.n_estimators, max_depth=params.max_depth, random_state=params.seed, n_jobs=1
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    )
