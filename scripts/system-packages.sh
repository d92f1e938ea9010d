#!/usr/bin/env bash
# Install the Debian packages qwenfix needs on this machine, once: the Docker engine,
# debootstrap (offline sandbox image), Redis (broker, dedup), git and bubblewrap.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v redis-server >/dev/null || need+=(redis-server)
command -v git >/dev/null || need+=(git)
command -v bwrap >/dev/null || need+=(bubblewrap)
bash "$(dirname "$0")/apt-install.sh" "${need[@]}"
