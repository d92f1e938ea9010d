#!/bin/sh
# What the official redis image's entrypoint does, as far as deploy/compose.yaml relies on
# it: `redis-server …` runs as the unprivileged "redis" user owning /data (the volume).
set -eu

# `docker run IMAGE --appendonly yes` (flags or a .conf first) means redis-server, as there.
case "${1:-}" in
    -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ]; then
    # The official image compiles protected mode off; Debian's build has it on, which with
    # no password refuses every client but localhost, i.e. the other containers. Without a
    # config file, say so first on the command line (later flags still win).
    case "${2:-}" in
        *.conf) ;;
        *) shift; set -- redis-server --protected-mode no "$@" ;;
    esac
    if [ "$(id -u)" = 0 ]; then
        # A fresh named volume is root's: hand it to redis, then drop root.
        find . \! -user redis -exec chown redis:redis '{}' +
        umask 0077
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
