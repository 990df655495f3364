"""The environment (and the project's git-ignored ``.env``): endpoints, switches and secrets, read by one model,
:class:`EnvSettings`, and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlpipeline.errors import ConfigError
from mlpipeline.settings.params import DEFAULT_TRACKING_URI, Name


def project_root() -> Path:
    """The project directory: DVC's repo root while DVC runs a stage (also in an experiment's temp copy under
    ``.dvc/tmp/exps``, whose results belong to the project), else the current directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


class EnvSettings(BaseSettings):
    """Endpoints, switches and secrets from the environment or the project's git-ignored ``.env`` (the
    environment wins). This is the only place either is read.

    Secrets never go in params.yaml; MLflow and S3 clients read their credentials from the same environment.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True, populate_by_name=True)

    mlflow_tracking_uri: str = DEFAULT_TRACKING_URI
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password: SecretStr | None = None
    # Where stages run, and the network their containers join (none on the embedded defaults).
    mlpipeline_runtime: Literal["local", "docker"] = "local"
    mlpipeline_docker_network: str = "none"
    mlpipeline_debug: bool = False
    # How long a subprocess (dvc push/pull, a reproduction's dvc repro) may take before it is stopped.
    mlpipeline_subprocess_timeout: float = Field(default=3600.0, gt=0)
    # The DVC remote (make setup-remote): an S3 bucket, by default the team stack's MinIO.
    mlpipeline_remote_url: str = "s3://dvc-store"
    mlpipeline_s3_endpoint: str | None = "http://127.0.0.1:9000"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    # DagsHub (make dagshub): your user name, an access token, and the repository as owner/name.
    dagshub_user: str | None = None
    dagshub_token: SecretStr | None = None
    dagshub_repo: str | None = None
    # Serving (mlpipeline serve): limits, polling of the champion alias, an optional bearer token.
    serve_max_batch: int = Field(default=1000, ge=1, le=100_000, validation_alias="MLPIPELINE_SERVE_MAX_BATCH")
    serve_max_body_bytes: int = Field(default=1 << 20, ge=1024, validation_alias="MLPIPELINE_SERVE_MAX_BODY_BYTES")
    serve_poll_seconds: float = Field(default=10.0, ge=0.0, validation_alias="MLPIPELINE_SERVE_POLL_SECONDS")
    # A request's headers must arrive within this of its connection (or first byte), its body within the next:
    # slow clients are disconnected. Beyond max_connections open at once, new requests get a 503.
    serve_header_timeout: float = Field(default=10.0, gt=0.0, validation_alias="MLPIPELINE_SERVE_HEADER_TIMEOUT")
    serve_body_timeout: float = Field(default=30.0, gt=0.0, validation_alias="MLPIPELINE_SERVE_BODY_TIMEOUT")
    serve_max_connections: int = Field(default=1000, ge=1, validation_alias="MLPIPELINE_SERVE_MAX_CONNECTIONS")
    serve_token: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_SERVE_TOKEN")
    # A/B and shadow serving (serving/routing.py): off (champion only), ab (a share of requests answered by the
    # challenger alias, sticky by a request key header) or shadow (the champion answers, the challenger scores a
    # share of requests off the request path); changeable while serving with POST /ab.
    serve_ab_mode: Literal["off", "ab", "shadow"] = Field(default="off", validation_alias="MLPIPELINE_SERVE_AB_MODE")
    serve_ab_share: float = Field(default=0.1, ge=0.0, le=1.0, validation_alias="MLPIPELINE_SERVE_AB_SHARE")
    serve_ab_alias: Name = Field(default="challenger", validation_alias="MLPIPELINE_SERVE_AB_ALIAS")
    serve_ab_key_header: str = Field(
        default="X-Request-Key", pattern=r"^[A-Za-z0-9-]+$", validation_alias="MLPIPELINE_SERVE_AB_KEY_HEADER"
    )
    serve_ab_salt: str = Field(default="", max_length=64, validation_alias="MLPIPELINE_SERVE_AB_SALT")
    serve_ab_shadow_queue: int = Field(default=1000, ge=1, validation_alias="MLPIPELINE_SERVE_AB_SHADOW_QUEUE")
    # Answers kept in memory (rows) so that POST /feedback can check request ids and score the versions.
    serve_feedback_window: int = Field(default=100_000, ge=1, validation_alias="MLPIPELINE_SERVE_FEEDBACK_WINDOW")
    # The prediction log (monitoring/predictions.py): a folder of JSON Lines files ("off": no log), the share of
    # requests kept, the in-memory queue (full: records are dropped and counted), file size and how many files.
    prediction_log_dir: str = Field(default="logs/predictions", validation_alias="MLPIPELINE_PREDICTION_LOG_DIR")
    prediction_log_sample: float = Field(
        default=1.0, ge=0.0, le=1.0, validation_alias="MLPIPELINE_PREDICTION_LOG_SAMPLE"
    )
    prediction_log_queue: int = Field(default=100_000, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_QUEUE")
    prediction_log_file_mb: int = Field(default=64, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_FILE_MB")
    prediction_log_keep_files: int = Field(default=16, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_KEEP_FILES")
    # The team stack: PostgreSQL instead of files (postgresql://user:password@host:port/db), rows kept this many days.
    prediction_log_url: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_PREDICTION_LOG_URL")
    prediction_log_keep_days: int = Field(default=30, ge=1, validation_alias="MLPIPELINE_PREDICTION_LOG_KEEP_DAYS")
    # The drift summary `mlpipeline monitor` writes (--out), which the server shows in /metrics.
    drift_summary: str = Field(default="reports/drift/summary.json", validation_alias="MLPIPELINE_DRIFT_SUMMARY")
    # `mlpipeline monitor` with monitor.retrain: airflow triggers the DAG through Airflow's REST API here.
    airflow_url: str | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_URL")
    airflow_username: str | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_USERNAME")
    airflow_password: SecretStr | None = Field(default=None, validation_alias="MLPIPELINE_AIRFLOW_PASSWORD")
    # Set by DVC and by the docker launcher for the stage they run; not yours to set.
    dvc_root: str | None = None
    dvc_exp_name: str | None = None
    dvc_exp_baseline_rev: str | None = None
    mlpipeline_in_container: bool = False
    # Fault injection for the crash tests: the process group is killed at the named checkpoint.
    mlpipeline_crash_at: str | None = None

    @property
    def in_experiment(self) -> bool:
        """True while DVC runs the stage for ``dvc exp run`` (workspace, --temp or a queue worker)."""
        return bool(self.dvc_exp_name)


def _env_error(exc: ValidationError) -> ConfigError:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        field = EnvSettings.model_fields.get(name)
        alias = field.validation_alias if field is not None else None
        shown = alias if isinstance(alias, str) else name
        problems.append(f"{shown.upper()}: {error['msg']}")
    return ConfigError("environment: " + "; ".join(problems) + " (environment or .env, see .env.example)")


def env_settings() -> EnvSettings:
    """Read the environment and the project's ``.env`` now (never at import time)."""
    try:
        return EnvSettings(_env_file=project_root() / ".env")
    except ValidationError as exc:
        raise _env_error(exc) from exc
