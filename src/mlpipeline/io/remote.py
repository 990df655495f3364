"""The DVC remote: S3 (MinIO, AWS) or DagsHub; set up idempotently, pushed and pulled with clear errors.

The remote's URL and endpoint go to ``.dvc/config`` (tracked: teammates need them); credentials go to
``.dvc/config.local`` (git-ignored). Configuration is written through DVC's own config API, so secrets never
appear on a command line, and every message this module prints has the secrets scrubbed out.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError, ServiceUnavailableError

logger = logging.getLogger(__name__)

CREDENTIAL_ERRORS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "403",
    "Forbidden",
    "Unable to locate credentials",
    "NoCredentialsError",
    "InvalidClientTokenId",
)
UNREACHABLE_ERRORS = (
    "Could not connect to the endpoint URL",
    "Connection refused",
    "ConnectTimeout",
    "Name or service not known",
    "EndpointConnectionError",
    "ConnectionError",
    "timed out",
)


@dataclass(frozen=True)
class S3Remote:
    """Where DVC data goes: ``url`` (``s3://bucket/prefix``), an S3-compatible ``endpoint`` (None for AWS)."""

    name: str
    url: str
    endpoint: str | None
    access_key_id: str
    secret_access_key: str

    @property
    def bucket(self) -> str:
        if not self.url.startswith("s3://") or len(self.url) <= len("s3://"):
            raise ConfigError(f"DVC remote URL {self.url!r} must look like s3://bucket[/prefix]")
        return self.url.removeprefix("s3://").split("/", 1)[0]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _classify(text: str, remote: str, endpoint: str | None) -> MlpipelineError | None:
    where = endpoint or "AWS S3"
    if any(marker in text for marker in CREDENTIAL_ERRORS):
        return ConfigError(
            f"the S3 endpoint {where} rejected the credentials of DVC remote {remote!r}: check access_key_id and "
            "secret_access_key in .dvc/config.local (rerun `make setup-remote` with the right AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY)"
        )
    if any(marker in text for marker in UNREACHABLE_ERRORS):
        return ServiceUnavailableError(
            f"the S3 endpoint {where} of DVC remote {remote!r} is not reachable: start it (`make up`) or check "
            "endpointurl in .dvc/config; nothing was lost, your data is still in the local cache: retry when it is up"
        )
    if "NoSuchBucket" in text:
        return ConfigError(f"the bucket of DVC remote {remote!r} does not exist at {where}: run `make setup-remote`")
    return None


def ensure_bucket(remote: S3Remote) -> bool:
    """Create the remote's bucket if it is missing; True when it was created."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=remote.endpoint,
        aws_access_key_id=remote.access_key_id,
        aws_secret_access_key=remote.secret_access_key,
        config=Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2}),
    )
    try:
        client.head_bucket(Bucket=remote.bucket)
        return False
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise _classify(f"{code} {exc}", remote.name, remote.endpoint) or MlpipelineError(
                f"S3: {scrub(str(exc), [remote.secret_access_key])}"
            ) from exc
    except BotoCoreError as exc:
        raise _classify(f"{type(exc).__name__} {exc}", remote.name, remote.endpoint) or MlpipelineError(
            f"S3: {scrub(str(exc), [remote.secret_access_key])}"
        ) from exc
    try:
        client.create_bucket(Bucket=remote.bucket)
    except (ClientError, BotoCoreError) as exc:
        raise _classify(str(exc), remote.name, remote.endpoint) or MlpipelineError(
            f"cannot create bucket {remote.bucket!r}: {scrub(str(exc), [remote.secret_access_key])}"
        ) from exc
    return True


def configure(remote: S3Remote, make_default: bool = True) -> None:
    """Write the remote to .dvc/config (URL, endpoint) and its credentials to .dvc/config.local."""
    from dvc.repo import Repo

    try:
        repo = Repo(".")
    except Exception as exc:  # NotDvcRepoError and friends
        raise ConfigError(f"not a DVC project here ({exc}): run from the project root") from exc
    with repo.config.edit("repo") as config:
        entry: dict[str, Any] = {"url": remote.url}
        if remote.endpoint:
            entry["endpointurl"] = remote.endpoint
        config["remote"][remote.name] = entry
        if make_default:
            config["core"]["remote"] = remote.name
    with repo.config.edit("local") as config:
        config["remote"][remote.name] = {
            "access_key_id": remote.access_key_id,
            "secret_access_key": remote.secret_access_key,
        }


def _local_secrets() -> list[str]:
    """Secrets in .dvc/config.local, to scrub from anything printed."""
    from dvc.repo import Repo

    try:
        local = Repo(".").config.load_one("local")
    except Exception:  # no local config, not a repo: nothing to scrub
        return []
    remotes = local.get("remote", {}) if isinstance(local, dict) else {}
    return [str(v) for r in remotes.values() for k, v in r.items() if "secret" in k or "password" in k or "token" in k]


def transfer(direction: str, remote: str | None = None) -> str:
    """``dvc push`` or ``dvc pull``; returns DVC's summary, raises a clear error naming the cause."""
    if direction not in ("push", "pull"):
        raise ValueError(direction)
    cmd = ["dvc", direction] + (["--remote", remote] if remote else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    secrets = _local_secrets()
    output = scrub((done.stdout or "") + (done.stderr or ""), secrets)
    if done.returncode == 0:
        return output.strip()
    logger.debug("%s output:\n%s", " ".join(cmd), output)
    if "no remote specified" in output.lower() or "config file error" in output.lower():
        raise ConfigError("no DVC remote is configured: run `make setup-remote` (or `make dagshub`) first")
    endpoint = _endpoint_of(remote)
    error = _classify(output, remote or "default", endpoint)
    if error is not None:
        raise error
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
    raise MlpipelineError(f"dvc {direction} failed: {last[0].strip()}")


def _endpoint_of(remote: str | None) -> str | None:
    from dvc.repo import Repo

    try:
        config = Repo(".").config
        name = remote or config["core"].get("remote")
        return str(config["remote"][name].get("endpointurl")) if name else None
    except Exception:  # an unreadable config is reported by DVC itself
        return None
