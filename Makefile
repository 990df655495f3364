# mlpipeline: every command people, hooks and CI run. `make` (or `make help`) lists them.
# Needs only python3 (3.11+), git and make: uv is installed into .tools/ on first use if it is not on PATH.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := .venv
# Stages run as `python -m mlpipeline ...` (see dvc.yaml): put the project's environment first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export UV_PROJECT_ENVIRONMENT := $(VENV)
UI_PORT ?= 5000
ARGS ?=
PYTEST_ARGS ?=

.PHONY: help setup run status dag metrics plots exp exp-show ui lint format test test-unit test-integration bench clean clean-all

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36mmake %-17s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into .tools/ (once)"
	@$(PYTHON) -m venv .tools || { echo "error: '$(PYTHON) -m venv' failed; install Python 3.11+ with venv (Debian: apt install python3-venv)"; exit 1; }
	@.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	@$(UV) sync --frozen --compile-bytecode --quiet
	@touch $@

setup: $(VENV)/.synced ## Install the locked environment (uv, from uv.lock) into .venv
	@echo "environment ready: $(VENV) (python -m mlpipeline --help)"

run: setup ## Run the whole pipeline (dvc repro): only what changed reruns
	@dvc repro $(ARGS)
	@echo
	@dvc metrics show
	@echo
	@echo "Outputs: data/raw, data/processed, models/, metrics/, plots/, reports/ (dvc.lock records their hashes)"
	@echo "Experiments: 'make ui' opens MLflow on http://127.0.0.1:$(UI_PORT)  |  compare runs: make exp ARGS=\"-S train.n_estimators=300\""

status: setup ## What changed since the last run (dvc status)
	@dvc status

dag: setup ## Draw the pipeline graph (dvc dag)
	@dvc dag

metrics: setup ## Show the metrics of the workspace (dvc metrics show)
	@dvc metrics show

plots: setup ## Render the plots to dvc_plots/index.html (dvc plots show)
	@dvc plots show

exp: setup ## Run an experiment: make exp ARGS="-S train.n_estimators=300"
	@dvc exp run $(ARGS)
	@dvc exp show --no-pager --md --drop 'Created|State|Executor' 2>/dev/null || dvc exp show --no-pager

exp-show: setup ## Compare experiments (dvc exp show)
	@dvc exp show --no-pager

ui: setup ## Open the MLflow UI on the local store (MLFLOW_TRACKING_URI if set)
	@echo "MLflow UI on http://127.0.0.1:$(UI_PORT) (Ctrl-C to stop)"
	@mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port $(UI_PORT)

lint: setup ## Lint, format check and type check (ruff, mypy)
	@ruff check src tests benchmarks
	@ruff format --check src tests benchmarks
	@mypy

format: setup ## Format the code and fix what ruff can
	@ruff format src tests benchmarks
	@ruff check --fix src tests benchmarks

test: setup ## Run all tests (unit + integration; engine-bound tiers skip with a reason when absent)
	@pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-unit: setup ## Run only the fast unit tests
	@pytest -m "not integration" $(PYTEST_ARGS)

test-integration: setup ## Run only the integration tests (real dvc repro, MLflow)
	@pytest -n 2 --dist loadgroup -m integration $(PYTEST_ARGS)

bench: setup ## Print pipeline timings (benchmarks/pipeline.py)
	@python benchmarks/pipeline.py

clean: ## Remove pipeline outputs and tool caches (keeps .venv, the DVC cache and the MLflow store)
	rm -rf data/raw data/processed models metrics plots reports dvc_plots .pytest_cache .ruff_cache .mypy_cache

clean-all: clean ## Also remove .venv, .tools, the DVC cache and the local MLflow store (mlflow.db, mlruns)
	rm -rf $(VENV) .tools .dvc/cache .dvc/tmp mlflow.db mlruns mlartifacts
