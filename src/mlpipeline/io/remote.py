"""The DVC remote: S3 (MinIO, AWS) or DagsHub; set up idempotently, pushed and pulled with clear errors.

The remote's URL and endpoint go to ``.dvc/config`` (tracked: teammates need them); credentials go to
``.dvc/config.local`` (git-ignored, mode 0600). Both files are edited with configobj (the library DVC reads them
with), keeping their other settings and comments; secrets never appear on a command line, and every message this
module prints has the secrets scrubbed out.

Failures are classified by type and error code, never by reading messages: before a push or pull, the S3
endpoint is probed with boto3 (an unreachable endpoint, refused credentials and a missing bucket each have their
own exception or code), and a project with no remote at all is an error, not a silent "Everything is up to date".
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipeline.errors import ConfigError, MlpipelineError, ServiceUnavailableError, bring_up_hint
from mlpipeline.tools import dvc_command

logger = logging.getLogger(__name__)

# S3 error codes (and HTTP statuses, which is all a HEAD request returns) that mean "these credentials are not
# allowed", and those that mean "no such bucket".
CREDENTIAL_CODES = frozenset(
    {"403", "401", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "InvalidClientTokenId"}
)
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
# DVC's S3 timeouts for the remotes set up here (seconds): a stalled endpoint fails a transfer instead of hanging
# it (botocore's default is a minute per try, and every try is retried).
TRANSFER_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 30}
# The bucket lifecycle rule that aborts multipart uploads a killed push left incomplete (their parts cost space).
ABORT_RULE_ID = "mlpipeline-abort-incomplete-uploads"
ABORT_AFTER_DAYS = 1


@dataclass(frozen=True)
class S3Remote:
    """Where DVC data goes: ``url`` (``s3://bucket/prefix``), an S3-compatible ``endpoint`` (None for AWS)."""

    name: str
    url: str
    endpoint: str | None
    access_key_id: str | None
    secret_access_key: str | None

    @property
    def bucket(self) -> str:
        if not self.url.startswith("s3://") or len(self.url) <= len("s3://"):
            raise ConfigError(f"DVC remote URL {self.url!r} must look like s3://bucket[/prefix]")
        return self.url.removeprefix("s3://").split("/", 1)[0]


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _s3_client(remote: S3Remote) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=remote.endpoint,
        aws_access_key_id=remote.access_key_id,
        aws_secret_access_key=remote.secret_access_key,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}),
    )


def _classified(exc: Exception, remote: S3Remote, *, from_config: bool) -> MlpipelineError:
    """Our error for a boto3/botocore failure, chosen by exception type and S3 error code."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = remote.endpoint or "AWS S3"
    fix = (
        "check access_key_id and secret_access_key in .dvc/config.local (rerun `make setup-remote` with the right "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        if from_config
        else "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment or .env)"
    )
    if isinstance(exc, ReadTimeoutError):
        return ServiceUnavailableError(
            f"the S3 endpoint {where} of DVC remote {remote.name!r} accepted the connection but did not answer "
            "(hung?): check that it is healthy (`make ps`); nothing was lost, your data is still in the local cache"
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return ServiceUnavailableError(
            f"the S3 endpoint {where} of DVC remote {remote.name!r} is not reachable: {bring_up_hint(remote.endpoint)} "
            "(endpointurl in .dvc/config); nothing was lost, your data is still in the local cache: retry when it is up"
        )
    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"DVC remote {remote.name!r} has no S3 credentials: {fix}")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in CREDENTIAL_CODES:
            return ConfigError(f"the S3 endpoint {where} rejected the credentials of DVC remote {remote.name!r}: {fix}")
        if code in MISSING_BUCKET_CODES:
            return ConfigError(
                f"the bucket {remote.bucket!r} of DVC remote {remote.name!r} does not exist at {where}: run "
                "`make setup-remote`"
            )
    return MlpipelineError(f"S3 ({where}): {scrub(str(exc), [remote.secret_access_key])}")


def probe(remote: S3Remote, *, from_config: bool = True) -> bool:
    """Check the endpoint answers, the credentials are accepted and the bucket exists; False when it does not.

    Raises the classified error for anything but a missing bucket.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _s3_client(remote).head_bucket(Bucket=remote.bucket)
    except (ClientError, BotoCoreError) as exc:
        error = _classified(exc, remote, from_config=from_config)
        if isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in MISSING_BUCKET_CODES:
            return False
        raise error from exc
    return True


def ensure_bucket(remote: S3Remote) -> bool:
    """Create the remote's bucket if it is missing, with the rule that aborts incomplete uploads under its
    prefix; True when it was created."""
    from botocore.exceptions import BotoCoreError, ClientError

    created = not probe(remote, from_config=False)
    try:
        if created:
            _s3_client(remote).create_bucket(Bucket=remote.bucket)
        _abort_incomplete_uploads(remote)
    except (ClientError, BotoCoreError) as exc:
        raise _classified(exc, remote, from_config=False) from exc
    return created


def _abort_incomplete_uploads(remote: S3Remote) -> None:
    """Add (once) the lifecycle rule that aborts multipart uploads left incomplete under the remote's prefix
    after ABORT_AFTER_DAYS, keeping the bucket's other rules (if they cannot be read, nothing is written: a
    lifecycle configuration is replaced whole)."""
    from botocore.exceptions import ClientError

    client = _s3_client(remote)
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=remote.bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            _no_abort_rule(remote, exc)
            return
        rules = []
    prefix = remote.url.removeprefix("s3://").partition("/")[2].strip("/")
    prefix = f"{prefix}/" if prefix else ""  # "dvc/", never also "dvc-backups/"
    rule_id = f"{ABORT_RULE_ID}:{prefix}"[:255]  # one per remote prefix: two remotes in a bucket keep both
    rule = {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_AFTER_DAYS},
    }
    if rule in rules:
        return
    kept = [r for r in rules if r.get("ID") != rule_id]
    try:
        client.put_bucket_lifecycle_configuration(Bucket=remote.bucket, LifecycleConfiguration={"Rules": [*kept, rule]})
    except ClientError as exc:  # not allowed to these credentials: the remote works without it
        _no_abort_rule(remote, exc)


def _no_abort_rule(remote: S3Remote, exc: Any) -> None:
    logger.warning(
        "could not add the rule that aborts incomplete uploads to bucket %r (%s): a push killed mid-upload leaves "
        "its parts there until one is set (AbortIncompleteMultipartUpload)",
        remote.bucket,
        exc.response.get("Error", {}).get("Code", exc),
    )


def _repo(root: Path | None = None) -> Any:
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root) if root else ".")
    except NotDvcRepoError as exc:
        raise ConfigError(f"not a DVC project here ({exc}): run from the project root") from exc


def configure(remote: S3Remote, make_default: bool = True) -> None:
    """Write the remote to .dvc/config (URL, endpoint) and its credentials to .dvc/config.local (readable by its
    owner only). The files are edited in place: every other setting and every comment in them is kept (DVC's own
    config writer, behind `dvc remote add`, drops the comments)."""
    dvc_dir = Path(_repo().dvc_dir)
    entry = {"url": remote.url} | ({"endpointurl": remote.endpoint} if remote.endpoint else {}) | TRANSFER_TIMEOUTS
    _edit_config(dvc_dir / "config", f'remote "{remote.name}"', entry, default=remote.name if make_default else None)
    credentials = {"access_key_id": remote.access_key_id, "secret_access_key": remote.secret_access_key}
    _edit_config(dvc_dir / "config.local", f'remote "{remote.name}"', credentials, private=True)


def _edit_config(
    path: Path, section: str, entry: dict[str, Any], default: str | None = None, private: bool = False
) -> None:
    """Replace ``section`` of a DVC config file with ``entry`` (and set ``core.remote`` to ``default``), keeping
    the rest of the file and its comments; written atomically."""
    from configobj import ConfigObj

    config = ConfigObj(path.read_text(encoding="utf-8").splitlines() if path.exists() else [], write_empty_values=True)
    config.indent_type = "    "  # as DVC writes them
    config[section] = {key: str(value) for key, value in entry.items() if value is not None}
    if default is not None:
        if "core" not in config:
            config["core"] = {}
        config["core"]["remote"] = default
    text = "\n".join(config.write()) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600 from the start
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remote_from_env(url: str = "", endpoint: str = "", name: str = "storage") -> S3Remote:
    """The S3 remote the environment (or .env) describes: MLPIPELINE_REMOTE_URL, MLPIPELINE_S3_ENDPOINT
    ('aws' for AWS itself) and the AWS_* credentials; ``url`` and ``endpoint`` override the first two."""
    from mlpipeline.settings import env_settings

    settings = env_settings()
    if settings.aws_access_key_id is None or settings.aws_secret_access_key is None:
        raise ConfigError("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment or .env, see .env.example)")
    chosen = endpoint or settings.mlpipeline_s3_endpoint or ""
    return S3Remote(
        name=name,
        url=url or settings.mlpipeline_remote_url,
        endpoint=None if chosen in ("", "aws") else chosen,
        access_key_id=settings.aws_access_key_id.get_secret_value(),
        secret_access_key=settings.aws_secret_access_key.get_secret_value(),
    )


def configured_remote(name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The remote ``dvc push``/``pull`` would use (its name and merged config); ConfigError when there is none."""
    config = _repo().config
    chosen = name or config["core"].get("remote")
    remotes = config.get("remote", {})
    if not chosen:
        raise ConfigError(
            "no DVC remote is configured, so there is nowhere to push to or pull from: run `make setup-remote` "
            "(the team stack's MinIO or any S3 bucket) or `make dagshub` first"
        )
    if chosen not in remotes:
        raise ConfigError(f"DVC remote {chosen!r} is not configured (known: {', '.join(remotes) or 'none'})")
    return str(chosen), dict(remotes[chosen])


def _as_s3(name: str, entry: dict[str, Any]) -> S3Remote | None:
    url = str(entry.get("url", ""))
    if not url.startswith("s3://"):
        return None
    return S3Remote(
        name=name,
        url=url,
        endpoint=entry.get("endpointurl"),
        access_key_id=entry.get("access_key_id"),
        secret_access_key=entry.get("secret_access_key"),
    )


def _secrets(entry: dict[str, Any]) -> list[str]:
    return [str(v) for k, v in entry.items() if any(word in k for word in ("secret", "password", "token"))]


def transfer(direction: str, remote: str | None = None) -> str:
    """``dvc push`` or ``dvc pull``; returns DVC's summary, raises a clear error naming the cause."""
    from mlpipeline.settings import env_settings

    if direction not in ("push", "pull"):
        raise ValueError(direction)
    name, entry = configured_remote(remote)
    s3 = _as_s3(name, entry)
    if s3 is not None and not probe(s3):
        raise ConfigError(f"the bucket {s3.bucket!r} of DVC remote {name!r} does not exist: run `make setup-remote`")
    timeout = env_settings().mlpipeline_subprocess_timeout
    cmd = [dvc_command(), direction, "--remote", name]
    # On a terminal DVC's own progress bars go straight to it (DVC draws them only there; they hold file names,
    # never credentials); elsewhere its output is captured, scrubbed and summed up.
    terminal = sys.stderr.isatty()
    try:
        done = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=None if terminal else subprocess.PIPE, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceUnavailableError(
            f"dvc {direction} took longer than {timeout:.0f} s and was stopped (MLPIPELINE_SUBPROCESS_TIMEOUT); "
            "what was transferred is kept: run it again to resume"
        ) from exc
    output = scrub((done.stdout or "") + (done.stderr or ""), _secrets(entry))
    if done.returncode == 0:
        return output.strip()
    logger.debug("%s output:\n%s", " ".join(cmd), output)
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["DVC's message is above"]
    raise MlpipelineError(f"dvc {direction} to remote {name!r} failed: {last[0].strip()}")


def cached_file(md5: str, root: Path | None = None) -> Path | None:
    """The file with this content hash in the project's DVC cache, or None when the cache does not hold it."""
    path = Path(_repo(root).cache.local.oid_to_path(md5))
    return path if path.is_file() else None
