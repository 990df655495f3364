#!/usr/bin/env bash
# Provision a Docker engine and an offline base image, for CI and for air-gapped networks.
#
# - installs Docker (Debian's docker.io), debootstrap and docker-compose when missing, and starts dockerd
#   in the background when no daemon answers;
# - builds the base image $BASE_IMAGE (default mlpipeline-base:bookworm) from Debian packages with debootstrap,
#   with this host's CA bundle inside, so pip/uv in image builds trust a TLS-inspecting proxy. No image is
#   pulled from a registry. Skipped when the image exists already.
#
# Usage: sudo .ci/provision-docker.sh   (then: make build BASE_IMAGE=mlpipeline-base:bookworm)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-mlpipeline-base:bookworm}
SUITE=${SUITE:-bookworm}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
log() { printf '[provision-docker] %s\n' "$*" >&2; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}') is up"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE exists"
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
log "debootstrap $SUITE into $root (a few minutes)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$root" >/dev/null
# Trust the same certificates as the host (a TLS-inspecting proxy's CA, if any).
cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  -c 'ENV LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
log "built $BASE_IMAGE"
