"""DagsHub: one repository gives an S3-compatible DVC remote and a hosted MLflow tracking server.

As DagsHub documents them: the DVC remote is bucket ``dvc`` at ``https://dagshub.com/<owner>/<repo>.s3`` with
the access token as both key and secret; MLflow tracking is ``https://dagshub.com/<owner>/<repo>.mlflow`` with
the user name and token as basic-auth credentials.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mlpipeline.errors import ConfigError
from mlpipeline.io.remote import S3Remote, configure
from mlpipeline.settings import EnvSettings

DAGSHUB = "https://dagshub.com"
ENV_FILE = Path(".env")


def configure_dagshub(settings: EnvSettings, env_file: Path = ENV_FILE) -> str:
    """Configure the DVC remote and MLflow tracking for DagsHub; returns the tracking URI."""
    user, token, repo = settings.dagshub_user, settings.dagshub_token, settings.dagshub_repo
    missing = [n for n, v in (("DAGSHUB_USER", user), ("DAGSHUB_TOKEN", token), ("DAGSHUB_REPO", repo)) if not v]
    if missing:
        raise ConfigError(f"set {', '.join(missing)} (environment or .env, see .env.example) for `make dagshub`")
    assert user
    assert token
    assert repo
    full = repo if "/" in repo else f"{user}/{repo}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", full):
        raise ConfigError(f"DAGSHUB_REPO {repo!r} must be owner/name (or name)")
    secret = token.get_secret_value()
    configure(
        S3Remote(
            name="origin",
            url="s3://dvc",
            endpoint=f"{DAGSHUB}/{full}.s3",
            access_key_id=secret,
            secret_access_key=secret,
        )
    )
    ignored = subprocess.run(["git", "check-ignore", "-q", str(env_file)], check=False).returncode == 0
    if not ignored:
        raise ConfigError(f"{env_file} is not git-ignored: add it to .gitignore before storing the token in it")
    from dotenv import set_key

    env_file.touch(mode=0o600, exist_ok=True)
    uri = f"{DAGSHUB}/{full}.mlflow"
    set_key(str(env_file), "MLFLOW_TRACKING_URI", uri, quote_mode="never")
    set_key(str(env_file), "MLFLOW_TRACKING_USERNAME", user, quote_mode="never")
    set_key(str(env_file), "MLFLOW_TRACKING_PASSWORD", secret, quote_mode="never")
    return uri
