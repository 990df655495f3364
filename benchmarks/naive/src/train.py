"""Stage 4: train a random forest, log params, metrics and the model to MLflow, register it."""

# ruff: noqa: F401, SIM115  (the reference's style, on purpose: every script imports everything)

import json
import os
import pickle

import matplotlib
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

train = pd.read_csv(params["data"]["train"])
X, y = train[FEATURES], train["target"]

mlflow.set_experiment(params["mlflow"]["experiment_name"])
with mlflow.start_run() as run:
    mlflow.log_params(params["train"])
    model = RandomForestClassifier(**params["train"])
    model.fit(X, y)
    train_accuracy = accuracy_score(y, model.predict(X))
    mlflow.log_metric("train_accuracy", train_accuracy)
    mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=X.head(5),
        skops_trusted_types=["sklearn.tree._tree.Tree"],  # MLflow 3's skops format refuses to save without it
        registered_model_name=params["mlflow"]["registered_model_name"],
    )
    run_id = run.info.run_id

os.makedirs("models", exist_ok=True)
with open("models/model.pkl", "wb") as f:
    pickle.dump(model, f)
with open("models/model_metadata.json", "w") as f:
    json.dump({"run_id": run_id, "train_accuracy": train_accuracy, "params": params["train"]}, f, indent=2)
print(f"Train accuracy: {train_accuracy:.4f}, run {run_id}")
