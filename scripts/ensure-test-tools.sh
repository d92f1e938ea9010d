#!/usr/bin/env bash
# What only the tests need from Debian: Chromium for the dashboard's browser tests
# (Playwright drives it and downloads no browser of its own) and docker-compose, which
# validates deploy/compose.yaml. `make test` runs this; `make demo` does not.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
bash "$(dirname "$0")/apt-install.sh" "${need[@]}"
