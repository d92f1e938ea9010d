#!/usr/bin/env bash
# What only the tests need from Debian: Chromium for the dashboard's browser tests
# (Playwright drives it and downloads no browser of its own) and docker-compose, which
# validates deploy/compose.yaml. `make test` runs this; `make demo` does not.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
((${#need[@]})) || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing system packages for the tests: ${need[*]} (run as root, or install them)" >&2
    exit 1
fi
echo "installing ${need[*]} (for the tests)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
