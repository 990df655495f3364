"""Stage 1: download the Iris data set to data/raw/iris.csv."""

# ruff: noqa: F401, SIM115  (the reference's style, on purpose: every script imports everything)

import json
import os

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))

iris = load_iris(as_frame=True)
df = iris.frame.rename(
    columns={
        "sepal length (cm)": "sepal_length",
        "sepal width (cm)": "sepal_width",
        "petal length (cm)": "petal_length",
        "petal width (cm)": "petal_width",
    }
)
df["species"] = df["target"].map(dict(enumerate(iris.target_names)))
os.makedirs(os.path.dirname(params["data"]["raw"]), exist_ok=True)
df.to_csv(params["data"]["raw"], index=False)
print(f"Saved {len(df)} rows to {params['data']['raw']}")
