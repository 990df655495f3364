"""Train/test split, and reading the label columns back."""

from __future__ import annotations

import pandas as pd

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET


def split(df: pd.DataFrame, test_size: float, seed: int, stratify: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping class proportions when ``stratify``; deterministic for a fixed seed. Rows keep their order."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        df.index.to_numpy(), test_size=test_size, random_state=seed, stratify=df[RAW_TARGET] if stratify else None
    )
    return df.loc[sorted(train_idx)].reset_index(drop=True), df.loc[sorted(test_idx)].reset_index(drop=True)


def labels_of(df: pd.DataFrame) -> dict[int, str]:
    """Class code -> name, as recorded in the data."""
    pairs = df[[RAW_TARGET, RAW_LABEL]].drop_duplicates().sort_values(RAW_TARGET)
    return {int(code): str(name) for code, name in pairs.itertuples(index=False)}
