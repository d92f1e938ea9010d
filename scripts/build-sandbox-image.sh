#!/usr/bin/env bash
# Build the default sandbox image offline, equivalent to deploy/sandbox/Dockerfile
# (python:3.12-slim + git + a non-root "sandbox" user), from Debian packages with
# debootstrap, because no image registry is reachable here. Reused when present.
set -euo pipefail

IMAGE="${QWENFIX_SANDBOX_IMAGE:-qwenfix-sandbox:1}"
MIRROR="${QWENFIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "sandbox image $IMAGE: present"
    exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

root="$(mktemp -d /tmp/qwenfix-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "building sandbox image $IMAGE with debootstrap (about a minute)..."
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python3-pytest,git,ca-certificates,procps \
    bookworm "$root" "$MIRROR" >/tmp/qwenfix-debootstrap.log 2>&1 \
    || { tail -20 /tmp/qwenfix-debootstrap.log; exit 1; }

# Behave like python:3.12-slim: pip installs system-wide, `python` and `pip` on PATH.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$root/usr/bin/python"
ln -sf pip3 "$root/usr/bin/pip"
# The agent runs as this unprivileged user (uid 1000), as in deploy/sandbox/Dockerfile.
chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash sandbox
mkdir -p "$root/workspace" && chroot "$root" chown sandbox:sandbox /workspace
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PYTHONDONTWRITEBYTECODE=1' \
    -c 'WORKDIR /workspace' \
    -c 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "sandbox image $IMAGE: built"
