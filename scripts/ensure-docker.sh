#!/usr/bin/env bash
# Make sure a Docker engine answers; start dockerd in the background when none does.
set -euo pipefail
if docker info >/dev/null 2>&1 || python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("/var/run/docker.sock")' 2>/dev/null; then
    exit 0
fi
command -v dockerd >/dev/null || bash "$(dirname "$0")/system-packages.sh"
log="${TMPDIR:-/tmp}/qwenfix-dockerd.log"
echo "starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 60); do
    if python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect("/var/run/docker.sock")' 2>/dev/null \
        && { ! command -v docker >/dev/null || docker info >/dev/null 2>&1; }; then
        exit 0
    fi
    sleep 1
done
echo "dockerd did not come up; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
