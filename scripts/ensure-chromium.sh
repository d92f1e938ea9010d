#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives it and downloads
# no browser of its own). Only the tests need it, so only `make test` installs it.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing system package: chromium (run as root, or install it)" >&2
    exit 1
fi
echo "installing chromium (for the browser tests)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
