#!/usr/bin/env bash
# Build the qwenfix image (deploy/Dockerfile) on machines without a registry: from the
# offline sandbox base instead of python:3.12-slim, trusting this host's CA bundle (for a
# TLS-intercepting proxy in front of PyPI), then check it runs as a non-root user with
# its resources and without compilers. Needs PyPI and Debian's mirrors; not part of CI.
#
#   scripts/check-image.sh [TAG]    TAG defaults to qwenfix:local (scripts/compose-check.sh
#                                   runs the compose stack on what this builds)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-qwenfix:local}"
bash scripts/build-sandbox-image.sh >/dev/null
ca=$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")')
trap 'rm -f deploy/ca-certificates.d/host.crt' EXIT
[ -n "$ca" ] && [ -f "$ca" ] && cp "$ca" deploy/ca-certificates.d/host.crt
DOCKER_BUILDKIT=0 docker build -q --build-arg PYTHON_IMAGE=qwenfix-sandbox:1 \
    -f deploy/Dockerfile -t "$tag" . >/dev/null
docker run --rm "$tag" sh -c '
    test "$(id -u)" != 0 || { echo "runs as root"; exit 1; }
    ! command -v gcc >/dev/null || { echo "a compiler is in the final image"; exit 1; }
    qwenfix --help >/dev/null
    python -c "from workers.engine.resources import resource_dir; resource_dir(\"prompts\")"'
echo "$tag built and checked ($(docker images "$tag" --format '{{.Size}}'))"
