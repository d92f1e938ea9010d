#!/usr/bin/env bash
# Build a sandbox image offline, equivalent to deploy/sandbox/Dockerfile (python:X.Y-slim +
# git + a non-root "sandbox" user), from Debian packages with debootstrap, because no image
# registry is reachable here. Reused when present.
#
#   scripts/build-sandbox-image.sh                 the default image, $QWENFIX_SANDBOX_IMAGE
#                                                  (qwenfix-sandbox:1, bookworm's Python 3.11)
#   scripts/build-sandbox-image.sh --python 3.9    qwenfix-sandbox:py3.9, for tasks that need
#                                                  that Python (`qwenfix eval`)
#
# Each Python comes from the Debian release that ships it: 3.9 bullseye, 3.11 bookworm,
# 3.13 trixie. Other versions have no offline recipe; with a registry, build them with
# `docker build --build-arg PYTHON=X.Y -t qwenfix-sandbox:pyX.Y deploy/sandbox`.
set -euo pipefail

MIRROR="${QWENFIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
python=""
if [ "${1:-}" = "--python" ]; then
    python="${2:?--python needs a version, e.g. 3.9}"
fi

case "$python" in
    "") release=bookworm; IMAGE="${QWENFIX_SANDBOX_IMAGE:-qwenfix-sandbox:1}" ;;
    3.9) release=bullseye ;;
    3.11) release=bookworm ;;
    3.13) release=trixie ;;
    *)
        echo "Python $python: no Debian release here ships it (3.9 bullseye, 3.11 bookworm," \
            "3.13 trixie); with a registry: docker build --build-arg PYTHON=$python" \
            "-t qwenfix-sandbox:py$python deploy/sandbox" >&2
        exit 2
        ;;
esac
if [ -n "$python" ]; then
    IMAGE="qwenfix-sandbox:py$python"
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "sandbox image $IMAGE: present"
    exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

root="$(mktemp -d /tmp/qwenfix-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
log="/tmp/qwenfix-debootstrap-$release.log"
echo "building sandbox image $IMAGE from Debian $release with debootstrap (about a minute)..."
# The default image carries Debian's pytest; a per-Python image is a clean interpreter, as
# python:X.Y-slim is, with pytest from PyPI (as deploy/sandbox/Dockerfile installs it) so
# that what a task's spec pins replaces it instead of meeting Debian's copy.
# It also has a C toolchain and Python's headers, as deploy/sandbox/Dockerfile does and as
# SWE-bench's environments do: projects with C extensions build from source there.
packages=python3,python3-venv,python3-pip,git,ca-certificates,procps
if [ -z "$python" ]; then
    packages="$packages,python3-pytest"
else
    packages="$packages,build-essential,python3-dev"
fi
# A mirror drops the odd download now and then ("Couldn't download packages"): try again on
# a clean root before calling the build failed.
for attempt in 1 2 3; do
    if debootstrap --variant=minbase --include="$packages" \
        "$release" "$root" "$MIRROR" >"$log" 2>&1; then
        break
    fi
    if [ "$attempt" = 3 ]; then
        tail -20 "$log"
        exit 1
    fi
    echo "debootstrap failed (attempt $attempt, log: $log); trying again" >&2
    rm -rf "${root:?}"/* && sleep 5
done

# Behave like python:X.Y-slim: pip installs system-wide, `python` and `pip` on PATH.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$root/usr/bin/python"
ln -sf pip3 "$root/usr/bin/pip"
if [ -n "$python" ]; then
    # From PyPI, trusting this host's CA bundle for the proxy in front of it. bullseye's
    # pip (20.3) predates editable installs from pyproject.toml (PEP 660): python:3.9-slim
    # ships pip 23.0.1 and setuptools 58.1.0, and so does this image.
    upgrade=""
    [ "$release" = bullseye ] && upgrade="pip==23.0.1 setuptools==58.1.0 wheel"
    ca=$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")')
    [ -n "$ca" ] && [ -f "$ca" ] && cp "$ca" "$root/tmp/host-ca.pem"
    chroot "$root" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        PIP_CERT=/tmp/host-ca.pem SSL_CERT_FILE=/tmp/host-ca.pem \
        REQUESTS_CA_BUNDLE=/tmp/host-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 \
        ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${https_proxy:+https_proxy=$https_proxy} \
        sh -c "python3 -m pip install -q --no-cache-dir $upgrade pytest" \
        >>"$log" 2>&1 || { tail -20 "$log"; exit 1; }
    rm -f "$root/tmp/host-ca.pem"
fi
# The agent runs as this unprivileged user (uid 1000), as in deploy/sandbox/Dockerfile.
chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash sandbox
mkdir -p "$root/workspace" && chroot "$root" chown sandbox:sandbox /workspace
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

extra=()
if [ -n "$python" ]; then
    # Debian's Python installs into dist-packages, which PyPI's setuptools (a project's
    # pinned one) does not know: its own distutils puts `pip install -e .` of an older
    # project in site-packages, off sys.path. Debian's patched distutils knows.
    extra=(-c 'ENV SETUPTOOLS_USE_DISTUTILS=stdlib')
fi
tar -C "$root" -c . | docker import "${extra[@]}" \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PYTHONDONTWRITEBYTECODE=1' \
    -c 'WORKDIR /workspace' \
    -c 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "sandbox image $IMAGE: built"
