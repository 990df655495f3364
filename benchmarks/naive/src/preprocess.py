"""Stage 3: split the raw data 80/20 into train and test sets."""

# ruff: noqa: F401, SIM115  (the reference's style, on purpose: every script imports everything)

import json
import os

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))

df = pd.read_csv(params["data"]["raw"])
train, test = train_test_split(
    df,
    test_size=params["preprocess"]["test_size"],
    random_state=params["preprocess"]["random_state"],
    stratify=df["target"],
)
os.makedirs(os.path.dirname(params["data"]["train"]), exist_ok=True)
train.to_csv(params["data"]["train"], index=False)
test.to_csv(params["data"]["test"], index=False)
print(f"Train: {len(train)} rows, test: {len(test)} rows")
