"""Classification and regression metrics, as plain JSON-ready dicts.

Which direction is better matters to the gate: :data:`LOWER_IS_BETTER` names the metrics where a smaller value
wins.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

Labels = npt.ArrayLike
LOWER_IS_BETTER = ("rmse", "mae")


def regression_metrics(y_true: Labels, y_pred: Labels) -> dict[str, float]:
    """RMSE, MAE and R2."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    out = {
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }
    return {k: round(v, 6) for k, v in out.items()}


def task_metrics(task: str, y_true: Labels, y_pred: Labels) -> dict[str, float]:
    """The metrics of ``task`` (classification or regression)."""
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    return classification_metrics(y_true, y_pred)


def residual_summary(y_true: Labels, y_pred: Labels) -> dict[str, float]:
    """How the errors (predicted - actual) are spread: mean, standard deviation, quantiles, worst."""
    import numpy as np

    residuals = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    quantiles = np.quantile(residuals, [0.05, 0.25, 0.5, 0.75, 0.95])
    out = {"mean": residuals.mean(), "std": residuals.std(), "max_abs": np.abs(residuals).max()}
    out.update({f"q{int(q * 100):02d}": v for q, v in zip((0.05, 0.25, 0.5, 0.75, 0.95), quantiles, strict=True)})
    return {k: round(float(v), 6) for k, v in out.items()}


def classification_metrics(y_true: Labels, y_pred: Labels) -> dict[str, float]:
    """Accuracy plus macro and weighted precision, recall and F1 (zero where a class is never predicted)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out[f"precision_{average}"] = float(precision)
        out[f"recall_{average}"] = float(recall)
        out[f"f1_{average}"] = float(f1)
    return {k: round(v, 6) for k, v in out.items()}


def per_class_report(y_true: Labels, y_pred: Labels, labels: dict[int, str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each class, keyed by label name."""
    from sklearn.metrics import precision_recall_fscore_support

    codes = sorted(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=codes, average=None, zero_division=0
    )
    return {
        labels[code]: {
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(s),
        }
        for code, p, r, f, s in zip(codes, precision, recall, f1, support, strict=True)
    }


def confusion(y_true: Labels, y_pred: Labels, labels: dict[int, str]) -> dict[str, Any]:
    """Confusion matrix with rows = actual, columns = predicted, in label-code order."""
    from sklearn.metrics import confusion_matrix

    codes = sorted(labels)
    matrix = confusion_matrix(y_true, y_pred, labels=codes)
    return {"labels": [labels[c] for c in codes], "matrix": matrix.astype(int).tolist()}
