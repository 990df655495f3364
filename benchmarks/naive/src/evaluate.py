"""Stage 5: load the run's model from MLflow, score the test set, write metrics and a confusion-matrix plot,
log them to the training run."""

# ruff: noqa: F401, SIM115  (the reference's style, on purpose: every script imports everything)

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

with open("models/model_metadata.json") as f:
    run_id = json.load(f)["run_id"]
test = pd.read_csv(params["data"]["test"])
X, y = test[FEATURES], test["target"]
model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
predicted = model.predict(X)
metrics = {
    "accuracy": accuracy_score(y, predicted),
    "precision": precision_score(y, predicted, average="weighted"),
    "recall": recall_score(y, predicted, average="weighted"),
    "f1": f1_score(y, predicted, average="weighted"),
}
matrix = confusion_matrix(y, predicted)
os.makedirs("metrics", exist_ok=True)
os.makedirs("plots", exist_ok=True)
with open("metrics/metrics.json", "w") as f:
    json.dump(metrics, f, indent=2)
with open("metrics/confusion_matrix.json", "w") as f:
    json.dump({"labels": [0, 1, 2], "matrix": matrix.tolist()}, f, indent=2)
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(matrix, cmap="Blues")
for i in range(matrix.shape[0]):
    for j in range(matrix.shape[1]):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center")
ax.set_xlabel("predicted")
ax.set_ylabel("actual")
fig.savefig("plots/confusion_matrix.png")

with mlflow.start_run(run_id=run_id):
    mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    mlflow.log_artifact("plots/confusion_matrix.png")
    mlflow.log_artifact("metrics/metrics.json")
print("Test metrics:", metrics)
