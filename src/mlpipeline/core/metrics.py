"""Classification metrics, as plain JSON-ready dicts."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

Labels = npt.ArrayLike


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
