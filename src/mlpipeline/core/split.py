"""Train/test split."""

from __future__ import annotations

import pandas as pd

from mlpipeline.core.columns import RAW_LABEL, RAW_TARGET


def stratified_split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split keeping class proportions; deterministic for a fixed seed. Rows keep their original order."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        df.index.to_numpy(), test_size=test_size, random_state=seed, stratify=df[RAW_TARGET]
    )
    return df.loc[sorted(train_idx)].reset_index(drop=True), df.loc[sorted(test_idx)].reset_index(drop=True)


def features_and_target(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model input (every column but the label columns) and the integer target."""
    return df.drop(columns=[RAW_TARGET, RAW_LABEL], errors="ignore"), df[RAW_TARGET].astype("int64")


def labels_of(df: pd.DataFrame) -> dict[int, str]:
    """Class code -> name, as recorded in the data."""
    pairs = df[[RAW_TARGET, RAW_LABEL]].drop_duplicates().sort_values(RAW_TARGET)
    return {int(code): str(name) for code, name in pairs.itertuples(index=False)}
