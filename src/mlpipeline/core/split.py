"""Train/test split: which rows go to the test set, and reading the label columns back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def holdout_rows(
    rows: int, test_size: float | int, seed: int, labels: np.ndarray | None = None, names: dict[int, str] | None = None
) -> np.ndarray:
    """The test set's row numbers, ascending: the rows ``sklearn.model_selection.train_test_split`` puts in the
    test set for the same ``test_size`` and ``seed`` (stratified by ``labels``, one class code per row, when
    given; a test checks that they agree), drawn the same way with the same random numbers. An integer
    ``test_size`` is a number of rows. A split that cannot be made is a ``ValueError`` naming the classes
    (``names``: code -> name) and the rows or test_size it needs.

    scikit-learn's own function collects the rows in Python lists: about 8 s and 600 MB for ten million rows.
    This holds only the labels, one class's row numbers at a time and a mask: linear in time, a few bytes a row.
    """
    import numpy as np
    from sklearn.model_selection._split import _validate_shuffle_split
    from sklearn.utils import check_random_state
    from sklearn.utils.extmath import _approximate_mode

    n_train, n_test = _validate_shuffle_split(rows, test_size, None, default_test_size=0.25)
    rng = check_random_state(seed)
    if labels is None:
        return np.sort(rng.permutation(rows)[:n_test])
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        lonely = ", ".join(repr((names or {}).get(int(c), str(c))) for c in classes[counts < 2])
        raise ValueError(
            f"class {lonely} has 1 row: a stratified split needs at least 2 rows of each class (one to train on, "
            "one to test); add rows of it, or leave it out of the data"
        )
    if min(n_train, n_test) < len(classes):
        needed = -(-len(classes) * 100 // rows) / 100  # the smallest share (rounded up) with a row per class
        raise ValueError(
            f"{n_train} train / {n_test} test rows cannot hold each of the {len(classes)} classes: set "
            f"preprocess.test_size between {needed:g} and {1 - needed:g} (or a number of rows), or add rows"
        )
    train_share = _approximate_mode(counts, n_train, rng)
    test_share = _approximate_mode(counts - train_share, n_test, rng)
    is_test = np.zeros(rows, dtype=bool)
    for code, count, start, size in zip(classes, counts, train_share, test_share, strict=True):
        shuffled = np.flatnonzero(labels == code).take(rng.permutation(count))
        is_test[shuffled[start : start + size]] = True
    return np.flatnonzero(is_test)


def split(df: pd.DataFrame, test_size: float, seed: int, stratify: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame as :func:`holdout_rows` does (rows keep their order); deterministic for a fixed seed."""
    labels = df[RAW_TARGET].to_numpy() if stratify else None
    is_test = df.index.isin(df.index[holdout_rows(len(df), test_size, seed, labels)])
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def labels_of(df: pd.DataFrame) -> dict[int, str]:
    """Class code -> name, as recorded in the data."""
    pairs = df[[RAW_TARGET, RAW_LABEL]].drop_duplicates().sort_values(RAW_TARGET)
    return {int(code): str(name) for code, name in pairs.itertuples(index=False)}
