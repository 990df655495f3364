# Airflow for mlpipeline: API server, scheduler, DAG processor and Celery worker (compose profile `airflow`).
# Its own environment from airflow/uv.lock (Airflow pins fastapi below the project's server), nothing else: the
# DAG file and workspace are the project, mounted at the same path; tasks run the stage images (docker operator).
#
# Build: make build [BASE_IMAGE=...]; tagged with a hash of this file and airflow/{pyproject.toml,uv.lock}.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE}

ARG UV_VERSION=0.13.8
ENV UV_PROJECT_ENVIRONMENT=/opt/airflow-venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    PATH=/opt/airflow-venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow/home

RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}"
WORKDIR /opt/airflow
COPY airflow/pyproject.toml airflow/uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-install-project --python python3 && rm -rf /opt/uv

# Non-root; compose runs it as your uid (outputs in the workspace belong to you) with the socket's group.
RUN (useradd --uid 50000 --no-create-home --shell /usr/sbin/nologin airflow 2>/dev/null || true) \
    && mkdir -p /opt/airflow/home && chmod 0777 /opt/airflow/home
USER 50000
ENV HOME=/tmp
LABEL org.opencontainers.image.title="mlpipeline-airflow" \
      org.opencontainers.image.source="docker/airflow.Dockerfile"
CMD ["airflow", "version"]
