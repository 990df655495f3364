"""``make pin-images``: the third-party images the project starts, pinned by tag and digest, updated in one command.

The pins live where they are used and nowhere else: the default of each ``${X_TAG:-...}`` in compose.yaml (a
user's own ``X_TAG`` in .env replaces tag and digest together) and ``ARG BASE_IMAGE=`` in the Dockerfiles.
Updating asks each image's registry (the Docker Registry HTTP API v2, anonymous pull tokens as Docker Hub hands
out) for its tags, moves each pin to the newest tag of the same series, and writes that tag's digest beside it:

- a version tag moves only in its last number (``16.10-bookworm`` to ``16.11-bookworm``, ``v3.5.0`` to ``v3.5.2``),
  so an update is a patch release, never a new major or minor version;
- a release-stamp tag (MinIO's ``RELEASE.2025-09-07T16-13-09Z``) moves to the newest stamp.

``--check`` changes nothing and exits 1 when a pin is behind (for a scheduled CI job).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlpipeline.errors import ServiceUnavailableError

logger = logging.getLogger("mlpipeline")

FILES = (Path("compose.yaml"), Path("docker/Dockerfile"), Path("docker/airflow.Dockerfile"))
# `image: minio/minio:${MINIO_TAG:-RELEASE...@sha256:...}` and `ARG BASE_IMAGE=python:3.11.14-slim-bookworm@...`
PIN = re.compile(
    r"(?P<lead>image: |ARG BASE_IMAGE=)(?P<repo>[a-z0-9][a-z0-9./_-]*):(?P<open>\$\{[A-Z0-9_]+:-)?"
    r"(?P<tag>[A-Za-z0-9._-]+)(?:@(?P<digest>sha256:[0-9a-f]{64}))?(?P<close>\})?"
)
OURS = "mlpipeline-"
MANIFESTS = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@dataclass(frozen=True)
class Pin:
    file: Path
    repo: str
    tag: str
    digest: str | None

    def __str__(self) -> str:
        return f"{self.repo}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def pins(files: tuple[Path, ...] = FILES) -> Iterator[Pin]:
    """Every third-party image reference in ``files`` (ours, ``mlpipeline-*``, are built here, not pulled)."""
    for file in files:
        for found in PIN.finditer(file.read_text(encoding="utf-8")):
            if not found["repo"].startswith(OURS) and bool(found["open"]) == bool(found["close"]):
                yield Pin(file, found["repo"], found["tag"], found["digest"])


def series(tag: str) -> tuple[re.Pattern[str], Callable[[str], tuple[int, ...]]]:
    """The tags ``tag`` may move to, and the key that orders them (newest last)."""
    numbers = list(re.finditer(r"\d+", tag))
    if tag.startswith("RELEASE.") or not numbers:
        fixed = re.sub(r"\d+", r"\\d+", re.escape(tag)) if numbers else re.escape(tag)
    else:
        last = numbers[-1]
        fixed = re.escape(tag[: last.start()]) + r"\d+" + re.escape(tag[last.end() :])
    pattern = re.compile(f"^{fixed}$")
    return pattern, lambda candidate: tuple(int(n) for n in re.findall(r"\d+", candidate))


def newest(tag: str, tags: list[str]) -> str:
    pattern, key = series(tag)
    return max((t for t in tags if pattern.match(t)), key=key, default=tag)


def update(registry: Callable[[str], Registry] | None = None, check: bool = False) -> list[tuple[Pin, str]]:
    """Move every pin to the newest tag of its series with that tag's digest; return what changed (or, with
    ``check``, what would) as (old pin, new reference) pairs."""
    open_registry = registry or Registry.for_repo
    changes: list[tuple[Pin, str]] = []
    for pin in list(pins()):
        remote = open_registry(pin.repo)
        tag = newest(pin.tag, remote.tags())
        reference = f"{pin.repo}:{tag}@{remote.digest(tag)}"
        if reference != str(pin):
            changes.append((pin, reference))
    if not check:
        for pin, reference in changes:
            text = pin.file.read_text(encoding="utf-8")
            pin.file.write_text(_rewrite(text, pin, reference.split(":", 1)[1]), encoding="utf-8")
    return changes


def _rewrite(text: str, pin: Pin, tag_and_digest: str) -> str:
    def swap(found: re.Match[str]) -> str:
        if found["repo"] != pin.repo or found["tag"] != pin.tag:
            return found[0]
        return f"{found['lead']}{found['repo']}:{found['open'] or ''}{tag_and_digest}{found['close'] or ''}"

    return PIN.sub(swap, text)


class Registry:
    """One image's repository on a registry speaking the Docker Registry HTTP API v2."""

    def __init__(self, base_url: str, name: str) -> None:
        import httpx

        self.name = name
        self.client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=True)
        self.token: str | None = None

    @classmethod
    def for_repo(cls, repo: str) -> Registry:
        """Docker Hub for ``postgres`` or ``minio/minio``; the named host for ``quay.io/minio/mc``."""
        host, _, rest = repo.partition("/")
        if rest and ("." in host or ":" in host):
            return cls(f"https://{host}", rest)
        return cls("https://registry-1.docker.io", repo if rest else f"library/{repo}")

    def tags(self) -> list[str]:
        found: list[str] = []
        url: str | None = f"/v2/{self.name}/tags/list?n=1000"
        while url:
            answer = self._get("GET", url)
            found += answer.json().get("tags") or []
            link = re.search(r"<([^>]+)>;\s*rel=\"next\"", answer.headers.get("link", ""))
            url = link[1] if link else None
        return found

    def digest(self, tag: str) -> str:
        answer = self._get("HEAD", f"/v2/{self.name}/manifests/{tag}", accept=MANIFESTS)
        digest = answer.headers.get("docker-content-digest")
        if not digest:
            raise ServiceUnavailableError(f"{self.client.base_url} gave no digest for {self.name}:{tag}")
        return str(digest)

    def _get(self, method: str, url: str, accept: str | None = None):  # type: ignore[no-untyped-def]
        import httpx

        headers = {"Accept": accept} if accept else {}
        try:
            for _ in range(2):
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                answer = self.client.request(method, url, headers=headers)
                if answer.status_code == 401 and not self.token:
                    self.token = self._token(answer.headers.get("www-authenticate", ""))
                    continue
                answer.raise_for_status()
                return answer
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"cannot ask {self.client.base_url} about {self.name} ({exc}): pinning needs the registry; "
                "run `make pin-images` where it is reachable"
            ) from exc
        raise ServiceUnavailableError(f"{self.client.base_url} refused an anonymous pull token for {self.name}")

    def _token(self, challenge: str) -> str:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer") or "realm" not in fields:
            raise ServiceUnavailableError(f"{self.client.base_url} asks for credentials for {self.name}: {challenge}")
        params = {"service": fields.get("service", ""), "scope": f"repository:{self.name}:pull"}
        answer = self.client.get(fields["realm"], params=params)
        answer.raise_for_status()
        body = answer.json()
        return str(body.get("token") or body.get("access_token"))
