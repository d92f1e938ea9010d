#!/usr/bin/env bash
# Build a sandbox image for one or more ecosystems offline, as a layer on the trixie base
# (qwenfix-sandbox:py3.13: Debian trixie, Python 3.13, git, a C toolchain, the sandbox
# user), with Debian trixie's toolchains: no image registry is reachable here. Production
# builds the same from deploy/sandbox/Dockerfile.ECOSYSTEM on the official images.
#
#   scripts/build-ecosystem-image.sh node          qwenfix-sandbox:node   (Node.js 20, npm, corepack)
#   scripts/build-ecosystem-image.sh go            qwenfix-sandbox:go     (Go 1.24)
#   scripts/build-ecosystem-image.sh rust          qwenfix-sandbox:rust   (Rust 1.85, cargo)
#   scripts/build-ecosystem-image.sh jvm           qwenfix-sandbox:jvm    (OpenJDK 21, Maven 3.9)
#   scripts/build-ecosystem-image.sh node,python   qwenfix-sandbox:node-python (both)
#
# The tag is the ecosystems, sorted, joined by "-" (workers/engine/ecosystems.py names
# images the same way). Reused when present; --print-tag only prints the tag.
set -euo pipefail

list="${1:?which ecosystems? node, go, rust, jvm, python, comma-separated}"
tag=$(tr ',' '\n' <<<"$list" | sed '/^$/d' | sort -u | paste -sd- -)
# QWENFIX_IMAGE_REPO and QWENFIX_NO_CACHE=1 are for the benchmark, which times a build
# from nothing under a name of its own.
IMAGE="${QWENFIX_IMAGE_REPO:-qwenfix-sandbox}:$tag"
if [ "${2:-}" = "--print-tag" ]; then
    echo "$IMAGE"
    exit 0
fi

packages=()
env_lines=()
for eco in ${tag//-/ }; do
    case "$eco" in
        python) ;; # the base has it
        node)
            packages+=(nodejs npm node-corepack)
            ;;
        go)
            packages+=(golang-go)
            # Never download another toolchain for a go.mod's `toolchain` line: the run
            # says which Go it asked for and which it got instead.
            # GOCACHE named so that setup (as root) warms the cache the tests (as the
            # sandbox user) use.
            env_lines+=("ENV GOTOOLCHAIN=local GOPATH=/home/sandbox/go GOFLAGS=-mod=mod GOCACHE=/home/sandbox/.cache/go-build")
            ;;
        rust)
            packages+=(cargo rustc)
            env_lines+=("ENV CARGO_HOME=/home/sandbox/.cargo")
            ;;
        jvm)
            packages+=(default-jdk-headless maven)
            ;;
        *)
            echo "unknown ecosystem: $eco (known: node, go, rust, jvm, python)" >&2
            exit 2
            ;;
    esac
done

recipe_of() {
    cat <<EOF
FROM qwenfix-sandbox:py3.13
LABEL io.qwenfix.ecosystems="$tag"
RUN apt-get update -q \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${packages[*]:-} \\
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
$(printf '%s\n' "${env_lines[@]:-}")
ENV CI=true NO_COLOR=1
WORKDIR /workspace
EOF
}
# An image of an older recipe is stale: rebuilt, as is one that is missing.
recipe=$(recipe_of | sha256sum | cut -c1-16)
have=$(docker image inspect -f '{{ index .Config.Labels "io.qwenfix.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
    echo "sandbox image $IMAGE: present"
    exit 0
fi
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/build-sandbox-image.sh" --python 3.13 >/dev/null
dockerfile="$(recipe_of)
LABEL io.qwenfix.recipe=$recipe"
echo "building sandbox image $IMAGE (Debian trixie's toolchains)..."
log="/tmp/qwenfix-ecosystem-$tag.log"
# Debian's mirror is plain HTTP (apt checks signatures), reachable from the build as from
# debootstrap; a dropped download is tried again.
for attempt in 1 2 3; do
    if docker build ${QWENFIX_NO_CACHE:+--no-cache} -q -t "$IMAGE" - <<<"$dockerfile" >"$log" 2>&1; then
        break
    fi
    if [ "$attempt" = 3 ]; then
        tail -20 "$log"
        exit 1
    fi
    echo "image build failed (attempt $attempt, log: $log); trying again" >&2
    sleep 5
done
echo "sandbox image $IMAGE: built"
