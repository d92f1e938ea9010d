#!/usr/bin/env bash
# What the official postgres image's entrypoint does, as far as deploy/compose.yaml relies
# on it: on an empty PGDATA (the volume), initdb with POSTGRES_USER as superuser and
# POSTGRES_PASSWORD as its password, password logins over the network (scram-sha-256),
# POSTGRES_DB created, /docker-entrypoint-initdb.d/*.sh|*.sql run; then the server, as the
# "postgres" user, listening on every address.
set -Eeuo pipefail

# `docker run IMAGE -c fsync=off` means postgres with those flags, as there.
if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    # A fresh named volume is root's: hand it to postgres, then drop root.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        # The official image refuses too (unless told to trust everyone, not done here).
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

    # The setup server listens on a private socket only (the official one uses the usual
    # socket): `pg_isready`, the healthcheck, says no until the real server is up, so
    # nothing that waits for "healthy" connects in the gap between the two.
    setup=$(mktemp -d)
    pg_ctl -D "$PGDATA" -w -s \
        -o "-c listen_addresses='' -c unix_socket_directories=$setup" start
    sql=(psql -v ON_ERROR_STOP=1 -X -q -h "$setup" --username="$user" --no-password)
    if [ "$db" != postgres ]; then
        "${sql[@]}" --dbname=postgres --set db="$db" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; "${sql[@]}" --dbname="$db" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    rmdir "$setup"
    echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
