#!/usr/bin/env bash
# A local PostgreSQL for the tests that prove the production database works: a role and
# database `qwenfix` (password `qwenfix`) on 127.0.0.1:5432. Starts a cluster when none runs.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
    if [ -z "$cluster" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -1)
        pg_createcluster "$version" main >/dev/null
        cluster="$version main"
    fi
    # shellcheck disable=SC2086
    pg_ctlcluster $cluster start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='qwenfix'\"" | grep -q 1 \
    || su postgres -c "psql -q -c \"CREATE ROLE qwenfix LOGIN PASSWORD 'qwenfix' CREATEDB\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='qwenfix'\"" | grep -q 1 \
    || su postgres -c "createdb -O qwenfix qwenfix"
