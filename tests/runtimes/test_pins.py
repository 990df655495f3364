"""`make pin-images` against a registry on loopback speaking the Docker Registry HTTP API v2 as Docker Hub does
(an anonymous bearer token per repository, paginated tag lists, digests only for the manifest types asked for)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlpipeline.errors import ServiceUnavailableError
from mlpipeline.runtimes.pins import FILES, Registry, newest, pins, update

TAGS = {
    "library/postgres": ["16", "16.9-bookworm", "16.10-bookworm", "16.12-bookworm", "17.2-bookworm", "16.11-alpine"],
    "minio/minio": ["latest", "RELEASE.2025-04-22T22-12-26Z", "RELEASE.2025-09-07T16-13-09Z", "RELEASE.2024-12-18"],
    "prom/prometheus": ["v3.5.0", "v3.5.2", "v3.6.0", "v3.5.1-rc.0"],
    "library/python": ["3.11.14-slim-bookworm", "3.11.15-slim-bookworm", "3.12.1-slim-bookworm"],
}


def digest(name: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()


class FakeRegistry(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self, name: str) -> bool:
        if self.headers.get("Authorization") == f"Bearer token-for-{name}":
            return True
        realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        challenge = f'Bearer realm="{realm}",service="fake-registry",scope="repository:{name}:pull"'
        self._send(401, b"{}", {"WWW-Authenticate": challenge})
        return False

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            scope = re.search(r"scope=repository%3A([^%]+(?:%2F[^%]+)?)%3Apull", self.path)
            name = scope[1].replace("%2F", "/") if scope else "?"
            self._send(200, json.dumps({"token": f"token-for-{name}"}).encode())
            return
        found = re.match(r"/v2/(.+)/tags/list\?n=\d+(?:&last=(.+))?$", self.path)
        if not found or found[1] not in TAGS:
            self._send(404)
            return
        if not self._authorised(found[1]):
            return
        tags = TAGS[found[1]]
        start = tags.index(found[2]) + 1 if found[2] else 0
        page, headers = tags[start : start + 2], {}
        if start + 2 < len(tags):  # two a page: the client must follow the Link header
            headers["Link"] = f'</v2/{found[1]}/tags/list?n=2&last={page[-1]}>; rel="next"'
        self._send(200, json.dumps({"name": found[1], "tags": page}).encode(), headers)

    def do_HEAD(self) -> None:
        found = re.match(r"/v2/(.+)/manifests/(.+)$", self.path)
        if not found or found[2] not in TAGS.get(found[1], []):
            self._send(404)
            return
        if not self._authorised(found[1]):
            return
        if "application/vnd.oci.image.index.v1+json" not in self.headers.get("Accept", ""):
            self._send(200)  # a v1 answer: no digest
            return
        self._send(200, headers={"Docker-Content-Digest": digest(found[1], found[2])})


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


COMPOSE = """services:
  postgres:
    image: postgres:${POSTGRES_TAG:-16.10-bookworm}
  minio:
    image: minio/minio:${MINIO_TAG:-RELEASE.2025-04-22T22-12-26Z}
  prometheus:
    image: prom/prometheus:${PROMETHEUS_TAG:-v3.5.0}
  serve:
    image: mlpipeline-serve:${MLPIPELINE_IMAGE_TAG:-latest}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "docker").mkdir()
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "docker/Dockerfile").write_text("ARG BASE_IMAGE=python:3.11.14-slim-bookworm\nFROM ${BASE_IMAGE}\n")
    (tmp_path / "docker/airflow.Dockerfile").write_text("ARG BASE_IMAGE=python:3.11.14-slim-bookworm\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pins_move_to_the_newest_patch_of_their_series_with_its_digest(registry: str, project: Path) -> None:
    def local(repo: str) -> Registry:
        return Registry(registry, repo if "/" in repo else f"library/{repo}")

    assert update(local, check=True)
    assert (project / "compose.yaml").read_text() == COMPOSE  # --check changes nothing
    changed = update(local)
    assert len(changed) == 5
    compose = (project / "compose.yaml").read_text()
    # A version moves in its last number only (not to 17, not to the alpine series, not to a release candidate).
    assert f"postgres:${{POSTGRES_TAG:-16.12-bookworm@{digest('library/postgres', '16.12-bookworm')}}}" in compose
    assert f"prom/prometheus:${{PROMETHEUS_TAG:-v3.5.2@{digest('prom/prometheus', 'v3.5.2')}}}" in compose
    # A release stamp moves to the newest stamp of the same shape.
    assert "minio/minio:${MINIO_TAG:-RELEASE.2025-09-07T16-13-09Z@sha256:" in compose
    assert "mlpipeline-serve:${MLPIPELINE_IMAGE_TAG:-latest}" in compose  # ours: built, never pulled
    dockerfile = (project / "docker/Dockerfile").read_text()
    python = f"python:3.11.15-slim-bookworm@{digest('library/python', '3.11.15-slim-bookworm')}"
    assert dockerfile.startswith(f"ARG BASE_IMAGE={python}\n")
    assert len(list(pins())) == 5  # the rewritten files parse again, ours still left out
    assert update(local) == []  # pinned: nothing left to do
    assert all(p.digest for p in pins())


def test_an_unreachable_registry_is_a_clear_error(project: Path) -> None:
    with pytest.raises(ServiceUnavailableError, match="pinning needs the registry"):
        update(lambda repo: Registry("http://127.0.0.1:9", f"library/{repo}"))
    assert (project / "compose.yaml").read_text() == COMPOSE


def test_newest_keeps_the_series() -> None:
    tags = ["7.4.6-bookworm", "8.0.1-bookworm", "7.4.10-bookworm", "7.4.9"]
    assert newest("7.4.5-bookworm", tags) == "7.4.10-bookworm"
    assert newest("latest", ["latest", "1.0"]) == "latest"
    assert newest("1.2.3", []) == "1.2.3"  # a tag the registry no longer lists stays


def test_every_third_party_image_of_the_project_is_pinned_to_a_release() -> None:
    """No `latest`, no bare major (`postgres:16`): a version with its patch number or a release stamp."""
    from tests.conftest import REPO

    found = list(pins(tuple(REPO / f for f in FILES)))
    assert {p.repo for p in found} >= {"minio/minio", "minio/mc", "postgres", "redis", "python", "prom/prometheus"}
    for pin in found:
        assert re.search(r"^(RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z|v?\d+\.\d+(\.\d+)?(-[a-z]+)*)$", pin.tag), pin
