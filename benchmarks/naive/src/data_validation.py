"""Stage 2: check the raw data (columns, no nulls, known labels, rows per class) and write a report."""

# ruff: noqa: F401, SIM115  (the reference's style, on purpose: every script imports everything)

import json
import os
import sys

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))
EXPECTED = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target", "species"]

df = pd.read_csv(params["data"]["raw"])
errors = []
if list(df.columns) != EXPECTED:
    errors.append(f"columns {list(df.columns)} != {EXPECTED}")
if df.isnull().any().any():
    errors.append("null values found")
for column in EXPECTED[:4]:
    if not pd.api.types.is_numeric_dtype(df[column]) or (df[column] < 0).any():
        errors.append(f"{column}: not a non-negative number")
if not set(df["target"].unique()) <= {0, 1, 2}:
    errors.append("unknown labels")
counts = df["target"].value_counts()
if (counts < params["validate"]["min_rows_per_class"]).any():
    errors.append("too few rows in a class")
os.makedirs("reports", exist_ok=True)
with open("reports/validation.json", "w") as f:
    json.dump({"passed": not errors, "errors": errors, "rows": len(df)}, f, indent=2)
if errors:
    print("Validation failed:", errors)
    sys.exit(1)
print("Validation passed")
