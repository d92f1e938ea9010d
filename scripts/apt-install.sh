#!/usr/bin/env bash
# Install the Debian packages named, once, as root; say which are missing otherwise.
# Used by system-packages.sh and ensure-test-tools.sh, which decide what is missing.
set -euo pipefail
(($#)) || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: $* (run as root, or install them)" >&2
    exit 1
fi
echo "installing system packages: $*"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
