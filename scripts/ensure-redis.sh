#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:${QWENFIX_REDIS_PORT:-6379}; start one when none does.
set -euo pipefail
port="${QWENFIX_REDIS_PORT:-6379}"
command -v redis-server >/dev/null || bash "$(dirname "$0")/system-packages.sh"
if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    exit 0
fi
redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --save '' --appendonly no \
    --logfile "${TMPDIR:-/tmp}/qwenfix-redis.log" >/dev/null
for _ in $(seq 30); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && exit 0
    sleep 0.2
done
echo "redis-server did not answer on 127.0.0.1:$port" >&2
exit 1
