# mlpipeline: every command people, hooks and CI run. `make` (or `make help`) lists them.
# Needs only python3 (3.11+), git and make: uv is installed into .tools/ on first use if it is not on PATH.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := .venv
# dvc and mlpipeline from the project's environment (stages find it themselves: see bin/stage).
export PATH := $(abspath $(VENV))/bin:$(PATH)
export UV_PROJECT_ENVIRONMENT := $(VENV)
UI_PORT ?= 5000
ARGS ?=
# The pre-imported stage worker (src/mlpipeline/runtimes/zygote.py): make run/exp/sweep start it, WORKER=0 does not.
WORKER ?= 1
WORKER_IDLE ?= 900
SWEEP ?= 110,120,130,140,150,160,170,180,190,200
JOBS ?= 2
PYTEST_ARGS ?=
# Optional parts (docs/adapt.md, "Removing a part"): their targets and tests apply only while their files exist.
LINT_PATHS = $(wildcard src tests benchmarks airflow monitoring docker)
OPTIONAL_ENVS = $(if $(wildcard airflow/pyproject.toml),airflow-setup) $(if $(wildcard monitoring/drift/pyproject.toml),monitor-setup)

# The stages and the environments they run in come from dvc.yaml (`mlpipeline stages`), never from a list here.
STAGES = $(shell $(abspath $(VENV))/bin/mlpipeline stages 2>/dev/null)
# Docker: images are tagged with a hash of what defines them (the launcher computes the same one).
SERVE_PORT ?= 8000
# Unset: each Dockerfile's own pinned BASE_IMAGE (make pin-images updates the pins).
BASE_IMAGE ?=
IMAGE_TAG = $(shell cat docker/Dockerfile docker/install_shared.py uv.lock pyproject.toml | sha256sum | cut -c1-12)
AIRFLOW_IMAGE_TAG = $(shell cat docker/airflow.Dockerfile airflow/uv.lock airflow/pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DOCKER_SOCKET ?= /var/run/docker.sock
STAGE ?=
PACKAGE ?=
FOR ?= model
# What compose.yaml reads: who to run as, the socket's group, the project path and the image tag.
COMPOSE_ENV = PROJECT_DIR="$(CURDIR)" MLPIPELINE_UID="$$(id -u)" MLPIPELINE_GID="$$(id -g)" \
	DOCKER_GID="$$(stat -c %g $(DOCKER_SOCKET))" DOCKER_SOCKET="$(DOCKER_SOCKET)" MLPIPELINE_IMAGE_TAG="$(IMAGE_TAG)"

.PHONY: help setup lock add deps setup-env git-sync run status dag metrics plots exp exp-show ui lint format test test-unit test-integration bench clean clean-all \
	build run-docker run-stage serve serve-docker up down ps logs setup-remote push pull dagshub \
	airflow-setup airflow-spec airflow-test airflow-up airflow-run airflow-down build-worker sweep worker worker-stop monitoring-up monitoring-down \
	monitor monitor-setup

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

lock: setup ## Re-resolve uv.lock and write requirements/<env>.txt of every environment dvc.yaml's stages use
	@UV=$(UV) mlpipeline lock
	@touch $(VENV)/.synced

add: setup ## Add a package where it is needed, then lock: make add PACKAGE=lightgbm [FOR=model|<stage>|<group>]
	@test -n "$(PACKAGE)" || { echo "usage: make add PACKAGE=<package> [FOR=model|<stage>|<group>]"; exit 1; }
	@UV=$(UV) mlpipeline add '$(PACKAGE)' --for $(FOR)
	@touch $(VENV)/.synced

deps: setup ## Write each stage's code deps into dvc.yaml (bin/stage and every module it imports)
	@mlpipeline deps

setup-env: ## Create .env from .env.example (never overwrites an existing .env; readable by you only)
	@if [ -e .env ]; then echo ".env exists: left as it is (compare with .env.example)"; else \
	  umask 077 && cp .env.example .env && chmod 600 .env && echo "created .env from .env.example: set your passwords in it"; fi

# A failed stage's exit code (3 data, 2 config, ...) is mlpipeline run's; make then exits 2, its last line
# `make: *** [Makefile:NN: run] Error 3` naming the code.
run: setup ## Run the whole pipeline (dvc repro): code deps and params checked first, only what changed reruns
	$(start_worker)
	@mlpipeline run $(ARGS)
	@echo
	@echo "Outputs: data/raw, data/processed, models/, metrics/, plots/, reports/ (dvc.lock records their hashes)"
	@echo "Experiments: 'make ui' opens MLflow on http://127.0.0.1:$(UI_PORT)  |  compare runs: make exp ARGS=\"-S train.n_estimators=300\""

git-sync: setup ## Record the pipeline's state: push its data to the DVC remote, then commit and push the code
	@dvc status --quiet || { echo "error: outputs differ from dvc.lock (dvc status): run make run first"; exit 1; }
	@mlpipeline push $(ARGS)
	@git add dvc.yaml dvc.lock params.yaml requirements contracts data/sources $$(git ls-files -m -- '*.gitignore')
	@if git diff --cached --quiet; then echo "nothing new to commit"; else \
	  git commit -q -m "$${MSG:-Pipeline state: dvc.lock and params (make git-sync)}" && git log -1 --format='committed %h %s'; fi
	@git push $(GIT_PUSH_ARGS)

# docker/Dockerfile is a tree of shared dependency layers: the first image builds them all (a couple of minutes),
# the others reuse them and add only their group's remainder (seconds each). Which images: `mlpipeline images`.
build: setup ## Build the stage images (one per environment in dvc.yaml), the server and the DVC runner (BASE_IMAGE=...)
	@command -v docker >/dev/null || { echo "error: docker not found; install Docker (or .ci/provision-docker.sh)"; exit 1; }
	@echo "building the shared dependency layers with the first image (docker/Dockerfile)"
	@UV=$(UV) mlpipeline images --build $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))
	@if [ -f docker/airflow.Dockerfile ]; then echo "building mlpipeline-airflow:$(AIRFLOW_IMAGE_TAG)"; \
	  docker build --quiet -f docker/airflow.Dockerfile $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	    -t mlpipeline-airflow:$(AIRFLOW_IMAGE_TAG) -t mlpipeline-airflow:latest . >/dev/null; fi
	@echo "images ready (tag $(IMAGE_TAG)): make run-docker"

pin-images: setup ## Update the third-party image pins (compose.yaml, BASE_IMAGE) to their newest patch tag + digest
	@mlpipeline pin-images $(ARGS)

build-worker: setup ## Build mlpipeline-worker, the image of the Airflow DAG's Kubernetes pods (DVC and every stage)
	@UV=$(UV) mlpipeline images --build --worker --only worker $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))
	@echo "mlpipeline-worker:$(IMAGE_TAG) built: push it where your cluster pulls from (MLPIPELINE_IMAGE_TAG=$(IMAGE_TAG))"

define require_runner
	@docker image inspect mlpipeline-runner:$(IMAGE_TAG) >/dev/null 2>&1 || \
	  { echo "error: image mlpipeline-runner:$(IMAGE_TAG) not found (missing, or older than docker/, uv.lock, pyproject.toml): run make build"; exit 1; }
endef

run-docker: ## Run the pipeline with every stage in its own container, driven by the DVC runner container
	$(require_runner)
	@$(COMPOSE_ENV) $(COMPOSE) run --rm dvc-runner dvc repro $(ARGS)

run-stage: ## Run one stage (and what it needs) in containers: make run-stage STAGE=train
	@test -n "$(STAGE)" || { echo "usage: make run-stage STAGE=<$(STAGES)>"; exit 1; }
	$(require_runner)
	@$(COMPOSE_ENV) $(COMPOSE) run --rm dvc-runner dvc repro $(STAGE)

serve: setup ## Serve the champion over HTTP on 127.0.0.1:8000 (SERVE_PORT=..., mlpipeline serve)
	@mlpipeline serve --port $(SERVE_PORT) $(ARGS)

serve-docker: ## Serve the champion from the serving image (compose service `serve`)
	@docker image inspect mlpipeline-serve:$(IMAGE_TAG) >/dev/null 2>&1 || \
	  { echo "error: image mlpipeline-serve:$(IMAGE_TAG) not found (missing or stale): run make build"; exit 1; }
	@$(COMPOSE_ENV) SERVE_PORT=$(SERVE_PORT) $(COMPOSE) up serve

up: ## Start the team stack: MinIO (S3) + PostgreSQL + MLflow tracking server (needs .env, see .env.example)
	@test -f .env || { echo "error: no .env: cp .env.example .env and set the passwords"; exit 1; }
	@set -a; . ./.env; set +a; for var in MINIO_ROOT_USER MINIO_ROOT_PASSWORD POSTGRES_PASSWORD; do \
	  test -n "$${!var:-}" || { echo "error: set $$var in .env (see .env.example)"; exit 1; }; done
	@docker image inspect mlpipeline-tracking:$(IMAGE_TAG) >/dev/null 2>&1 || \
	  { echo "error: image mlpipeline-tracking:$(IMAGE_TAG) not found (missing or stale): run make build"; exit 1; }
	@$(COMPOSE_ENV) $(COMPOSE) up -d minio minio-init postgres mlflow
	@echo "MLflow: http://127.0.0.1:5000  MinIO console: http://127.0.0.1:9001  (make ps, make logs, make down)"
	@echo "Use it: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 in .env, then make setup-remote"

down: ## Stop the team stack (named volumes keep the data)
	@$(COMPOSE_ENV) $(COMPOSE) down

ps: ## Show the team stack's services and health
	@$(COMPOSE_ENV) $(COMPOSE) ps

logs: ## Follow the team stack's logs (one service: make logs SERVICE=monitor)
	@$(COMPOSE_ENV) $(COMPOSE) --profile monitoring logs -f --tail=100 $(SERVICE)

setup-remote: setup ## Configure the DVC remote (bucket created if needed; credentials to .dvc/config.local)
	@mlpipeline setup-remote $(ARGS)

push: setup ## Upload DVC-tracked data to the remote (dvc push)
	@mlpipeline push $(ARGS)

pull: setup ## Download DVC-tracked data from the remote (dvc pull)
	@mlpipeline pull $(ARGS)

dagshub: setup ## Point the DVC remote and MLflow at a DagsHub repo (DAGSHUB_USER, DAGSHUB_TOKEN, DAGSHUB_REPO)
	@mlpipeline dagshub

status: setup ## What changed since the last run (dvc status)
	@dvc status

dag: setup ## Draw the pipeline graph (dvc dag)
	@dvc dag

metrics: setup ## Show the metrics of the workspace (dvc metrics show)
	@dvc metrics show

plots: setup ## Render the plots to dvc_plots/index.html (dvc plots show)
	@dvc plots show

exp: setup ## Run an experiment (never moves champion): make exp ARGS="-S train.n_estimators=300"
	$(start_worker)
	@mlpipeline exp $(ARGS)
	@dvc exp show --no-pager --md --drop 'Created|State|Executor' 2>/dev/null || dvc exp show --no-pager

sweep: setup ## Queue one experiment per value (SWEEP=110,120,...: train.n_estimators) and run them, JOBS at a time
	@# Every value is checked before anything is queued (mlpipeline exp, as make exp).
	$(start_worker)
	@mlpipeline exp --queue -S 'train.n_estimators=$(SWEEP)' $(ARGS)
	@mlpipeline exp --run-all -j $(JOBS)
	@dvc exp show --no-pager --md --drop 'Created|State|Executor' 2>/dev/null || dvc exp show --no-pager

define start_worker
	@if [ "$(WORKER)" = 1 ]; then python -P src/mlpipeline/runtimes/zygote.py start --idle $(WORKER_IDLE) \
	  || echo "warning: the stage worker did not start: stages run as plain processes (slower, same results)"; fi
endef

worker: setup ## Start the pre-imported stage worker (make run/exp/sweep do; it exits after WORKER_IDLE idle seconds)
	$(start_worker)

worker-stop: ## Stop the stage worker
	@python -P src/mlpipeline/runtimes/zygote.py stop

exp-show: setup ## Compare experiments (dvc exp show)
	@dvc exp show --no-pager

ui: setup ## Open the MLflow UI on the local store (MLFLOW_TRACKING_URI if set)
	@echo "MLflow UI on http://127.0.0.1:$(UI_PORT) (Ctrl-C to stop)"
	@mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port $(UI_PORT)

lint: setup ## Lint, format check and type check (ruff, mypy); the GitHub workflows (schema, zizmor), offline
	@ruff check $(LINT_PATHS)
	@ruff format --check $(LINT_PATHS)
	@if [ -d airflow/dags ]; then mlpipeline airflow-spec --check; fi
	@mlpipeline deps --check
	@mypy
	@check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	@zizmor --offline --quiet .github/workflows

format: setup ## Format the code and fix what ruff can
	@ruff format $(LINT_PATHS)
	@ruff check --fix $(LINT_PATHS)

test: setup $(OPTIONAL_ENVS) ## Run all tests (unit + integration; engine-bound tiers skip with a reason when absent)
	@pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-unit: setup ## Run only the fast unit tests
	@pytest -m "not integration" $(PYTEST_ARGS)

test-integration: setup $(OPTIONAL_ENVS) ## Run only the integration tests (real dvc repro, MLflow)
	@pytest -n 2 --dist loadgroup -m integration $(PYTEST_ARGS)

# ---- Airflow: its own locked environment (airflow/pyproject.toml, airflow/uv.lock), never mixed with ours ----
AIRFLOW_VENV := airflow/.venv
AIRFLOW_HOME ?= $(CURDIR)/.airflow
AIRFLOW := $(abspath $(AIRFLOW_VENV))/bin/airflow
# A DAG run's commit: the one checked out here (workers check it out in their own clones).
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
AIRFLOW_ENV = AIRFLOW_HOME="$(AIRFLOW_HOME)" AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/airflow/dags" \
	AIRFLOW__CORE__LOAD_EXAMPLES=false MLPIPELINE_WORKSPACE="$${MLPIPELINE_WORKSPACE:-$(CURDIR)}" \
	MLPIPELINE_PYTHON="$${MLPIPELINE_PYTHON:-$(abspath $(VENV))/bin/python}"

$(AIRFLOW_VENV)/.synced: airflow/uv.lock airflow/pyproject.toml | $(UV)
	@cd airflow && UV_PROJECT_ENVIRONMENT=.venv $(UV) sync --frozen --compile-bytecode --quiet
	@touch $@

airflow-setup: $(AIRFLOW_VENV)/.synced ## Install Airflow's own locked environment into airflow/.venv

airflow-spec: setup ## Regenerate airflow/dags/pipeline.json from dvc.yaml (commit it; make lint checks it)
	@mlpipeline airflow-spec

airflow-test: setup airflow-setup ## Run the DAG once here, in-process, without a scheduler (airflow dags test)
	@$(AIRFLOW_ENV) $(AIRFLOW) db migrate >/dev/null
	@$(AIRFLOW_ENV) $(AIRFLOW) dags test mlpipeline --conf '{"commit": "$(COMMIT)"}'

AIRFLOW_SERVICES := redis airflow-init airflow-apiserver airflow-scheduler airflow-dag-processor airflow-worker
AIRFLOW_COMPOSE = $(COMPOSE_ENV) AIRFLOW_IMAGE_TAG=$(AIRFLOW_IMAGE_TAG) $(COMPOSE) --profile airflow

airflow-up: ## Start Airflow on the team stack (API server, scheduler, DAG processor, Celery worker, Redis; needs .env)
	@test -f .env || { echo "error: no .env: cp .env.example .env and set the passwords"; exit 1; }
	@set -a; . ./.env; set +a; for var in MINIO_ROOT_USER MINIO_ROOT_PASSWORD POSTGRES_PASSWORD AIRFLOW_JWT_SECRET \
	  AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do \
	  test -n "$${!var:-}" || { echo "error: set $$var in .env (see .env.example)"; exit 1; }; done
	@for image in mlpipeline-airflow:$(AIRFLOW_IMAGE_TAG) mlpipeline-runner:$(IMAGE_TAG) mlpipeline-tracking:$(IMAGE_TAG); do \
	  docker image inspect $$image >/dev/null 2>&1 || \
	  { echo "error: image $$image not found (missing or stale): run make build"; exit 1; }; done
	@$(AIRFLOW_COMPOSE) up -d minio minio-init postgres mlflow $(AIRFLOW_SERVICES)
	@echo "Airflow: http://127.0.0.1:$${AIRFLOW_PORT:-8080}  (make airflow-run, make airflow-down)"

airflow-run: ## Trigger the DAG at this commit and wait, printing each task's state (COMMIT=<sha>)
	@$(AIRFLOW_COMPOSE) exec -T airflow-scheduler python "$(CURDIR)/airflow/run_dag.py" --commit "$(COMMIT)"

airflow-down: ## Stop Airflow (the team stack keeps running; named volumes keep the data)
	@$(AIRFLOW_COMPOSE) stop $(AIRFLOW_SERVICES)

MONITORING_COMPOSE = $(COMPOSE_ENV) $(COMPOSE) --profile monitoring

monitoring-up: ## Start Prometheus, Grafana and the drift watcher on the model server (make serve-docker first; needs .env)
	@test -f .env || { echo "error: no .env: cp .env.example .env and set the passwords"; exit 1; }
	@set -a; . ./.env; set +a; test -n "$${GRAFANA_ADMIN_PASSWORD:-}" || \
	  { echo "error: set GRAFANA_ADMIN_PASSWORD in .env (see .env.example)"; exit 1; }
	@$(MONITORING_COMPOSE) up -d prometheus grafana monitor
	@echo "Drift checks every $${MLPIPELINE_MONITOR_EVERY:-3600} s (make logs SERVICE=monitor)"
	@echo "Prometheus: http://127.0.0.1:$${PROMETHEUS_PORT:-9090}  Grafana: http://127.0.0.1:$${GRAFANA_PORT:-3000} (admin)"

monitoring-down: ## Stop Prometheus, Grafana and the drift watcher (named volumes keep their data)
	@$(MONITORING_COMPOSE) stop prometheus grafana monitor

# ---- Drift: `mlpipeline monitor` decides in our environment; Evidently draws the report in its own ----
DRIFT_VENV := monitoring/drift/.venv

$(DRIFT_VENV)/.synced: monitoring/drift/uv.lock monitoring/drift/pyproject.toml | $(UV)
	@cd monitoring/drift && UV_PROJECT_ENVIRONMENT=.venv $(UV) sync --frozen --compile-bytecode --quiet
	@touch $@

monitor-setup: $(DRIFT_VENV)/.synced ## Install Evidently's own locked environment for the drift report (monitoring/drift/.venv)

monitor: setup ## Compare the champion's recent predictions with its training data (exit 7 on drift; ARGS=--retrain pipeline)
	@mlpipeline monitor $(ARGS)

bench: setup ## Print pipeline timings (benchmarks/pipeline.py)
	@python benchmarks/pipeline.py

clean: ## Remove pipeline outputs and tool caches (keeps .venv, the DVC cache and the MLflow store)
	rm -rf data/raw data/processed models metrics plots reports dvc_plots .pytest_cache .ruff_cache .mypy_cache

clean-all: clean ## Also remove .venv, .tools, the DVC cache and the local MLflow store (mlflow.db, mlruns)
	rm -rf $(VENV) .tools .dvc/cache .dvc/tmp mlflow.db mlruns mlartifacts
