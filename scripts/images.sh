#!/usr/bin/env bash
# images.sh [--force] [NAME...]: build minikp's images (images/) into the Docker engine Docker
# pods use (DOCKER_HOST's, else minikp's private one, started for the build and stopped after),
# offline: FROM scratch, from this machine's Debian packages. `make images` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-python3}" -m minikp.docker.images "$@"
