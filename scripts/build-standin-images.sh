#!/usr/bin/env bash
# Build local stand-ins for the registry images deploy/compose.yaml runs besides qwenfix's
# own, because no image registry is reachable here (scripts/compose-check.sh uses them):
#
#   qwenfix-standin/redis:7       for redis:7-alpine      (Debian bookworm's Redis 7.0)
#   qwenfix-standin/postgres:16   for postgres:16-alpine  (Debian bookworm's PostgreSQL 15:
#                                 bookworm ships no 16, apt.postgresql.org is unreachable)
#
# Each is a debootstrap root file system imported as a base image (the slow part, a minute
# or two: built only when missing) and a thin layer from scripts/standins/<name>/ with an
# entrypoint that behaves like the official image's where compose relies on it (cheap,
# rebuilt from the builder's cache each time, so an edited entrypoint takes effect).
# Prints the tags it built, one a line: redis first, then postgres.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${QWENFIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RELEASE=bookworm

base_image() {
    # $1 base tag, $2 packages for debootstrap; $3… extra clean-up paths inside the rootfs.
    local image="$1" packages="$2"
    shift 2
    if docker image inspect "$image" >/dev/null 2>&1; then
        return 0
    fi
    command -v debootstrap >/dev/null \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
    local root log
    root="$(mktemp -d /tmp/qwenfix-standin-rootfs.XXXXXX)"
    # The rootfs is only a build input: gone whether the build works or not.
    trap 'rm -rf "$root"' RETURN
    log="/tmp/qwenfix-debootstrap-standin-${image//[\/:]/-}.log"
    echo "building $image from Debian $RELEASE with debootstrap (a minute or two)..." >&2
    # A mirror drops the odd download now and then: try again on a clean root.
    local attempt
    for attempt in 1 2 3; do
        debootstrap --variant=minbase --include="$packages" "$RELEASE" "$root" "$MIRROR" \
            >"$log" 2>&1 && break
        [ "$attempt" = 3 ] && { tail -20 "$log" >&2; return 1; }
        rm -rf "${root:?}"/* && sleep 5
    done
    local path
    for path in "$@"; do
        rm -rf "${root:?}/$path"
    done
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import - "$image" >/dev/null
}

standin() {
    # $1 name (scripts/standins/<name>/), $2 final tag, $3 base tag.
    DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$3" -t "$2" "scripts/standins/$1" >/dev/null
    echo "$2"
}

base_image qwenfix-standin/redis-base:"$RELEASE" redis-server,redis-tools
standin redis qwenfix-standin/redis:7 qwenfix-standin/redis-base:"$RELEASE"

# postgresql-common makes a "main" cluster as it installs: the entrypoint makes its own in
# PGDATA, so that one goes.
base_image qwenfix-standin/postgres-base:"$RELEASE" postgresql-15 \
    etc/postgresql/15 var/lib/postgresql/15
standin postgres qwenfix-standin/postgres:16 qwenfix-standin/postgres-base:"$RELEASE"
