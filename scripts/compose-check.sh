#!/usr/bin/env bash
# Run deploy/compose.yaml for real and check that every service comes up healthy: the
# migrate job exits 0, the receiver answers a signed ping, `qwenfix doctor` in worker-agent
# passes everything this machine can provide. Not part of CI (it builds qwenfix's image
# from PyPI, and Debian stand-ins for the registry images: a few minutes the first time).
#
#   scripts/compose-check.sh          `make compose-check`
#
# No registry is reachable here, so the stack runs on images built locally: qwenfix:local
# (scripts/check-image.sh, on the offline sandbox base instead of python:3.12-slim) and
# scripts/build-standin-images.sh's stand-ins for redis:7-alpine and postgres:16-alpine.
# compose.yaml itself is used unchanged, from a temporary copy beside a generated
# qwenfix.env and a throwaway App key; an override file only swaps those two images. No
# GPU either: the vllm services are behind profiles and stay off, and api.github.com is out
# of reach, so doctor's model and github checks are the two expected to fail.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

command -v docker-compose >/dev/null || bash scripts/apt-install.sh docker-compose
bash scripts/ensure-docker.sh >/dev/null

mapfile -t standins < <(bash scripts/build-standin-images.sh)
bash scripts/check-image.sh qwenfix:local

work="$(mktemp -d /tmp/qwenfix-compose-check.XXXXXX)"
project="qwenfix-check-$$"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
secret="compose-check-$RANDOM$RANDOM"
compose=(docker-compose -p "$project" -f "$work/deploy/compose.yaml" -f "$work/deploy/check.yaml")

cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -f "$work/deploy/check.yaml" ]; then
        echo "--- last log lines of each service ---" >&2
        "${compose[@]}" logs --no-color --tail 15 >&2 || true
    fi
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

mkdir -p "$work/deploy"
cp deploy/compose.yaml "$work/deploy/"
openssl genrsa -out "$work/deploy/github-app.pem" 2048 2>/dev/null
chmod 644 "$work/deploy/github-app.pem"   # read by the image's non-root user
sed -e "s/^QWENFIX_WEBHOOK_SECRET=.*/QWENFIX_WEBHOOK_SECRET=$secret/" \
    -e "s/^QWENFIX_GITHUB_APP_ID=.*/QWENFIX_GITHUB_APP_ID=1/" \
    -e "s/^QWENFIX_BOT_LOGIN=.*/QWENFIX_BOT_LOGIN=qwenfix-check[bot]/" \
    deploy/qwenfix.env.example >"$work/deploy/qwenfix.env"
cat >"$work/deploy/check.yaml" <<EOF
# scripts/compose-check.sh: the registry's images swapped for local stand-ins.
services:
  redis: {image: ${standins[0]}}
  postgres: {image: ${standins[1]}}
EOF
cat >"$work/deploy/.env" <<EOF
QWENFIX_IMAGE=qwenfix:local
QWENFIX_PORT=$port
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
EOF

echo "starting the stack (project $project, receiver on 127.0.0.1:$port)..."
"${compose[@]}" up -d --no-build >/dev/null

services=(redis postgres migrate api worker-quick worker-agent beat)
state() {
    # "healthy", "exited 0", "starting", ... for one service's container.
    local id
    id="$("${compose[@]}" ps -q "$1" 2>/dev/null || true)"
    [ -n "$id" ] || { echo "absent"; return; }
    docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}} {{.State.ExitCode}}{{end}}' "$id"
}
deadline=$((SECONDS + 300))
while :; do
    pending=()
    for s in "${services[@]}"; do
        st="$(state "$s")"
        case "$s:$st" in
            migrate:"exited 0" | *:healthy) ;;
            migrate:exited* | *:unhealthy | *:"exited "*)
                echo "$s is $st" >&2
                exit 1 ;;
            *) pending+=("$s ($st)") ;;
        esac
    done
    [ "${#pending[@]}" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "not healthy after 300 s: ${pending[*]}" >&2
        exit 1
    fi
    sleep 5
done
for s in "${services[@]}"; do printf '  %-13s %s\n' "$s" "$(state "$s")"; done

# The receiver, as GitHub reaches it: a signed ping.
code="$(SECRET="$secret" PORT="$port" python3 - <<'EOF'
import hashlib, hmac, json, os, urllib.request, uuid
body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
sig = "sha256=" + hmac.new(os.environ["SECRET"].encode(), body, hashlib.sha256).hexdigest()
req = urllib.request.Request(
    f"http://127.0.0.1:{os.environ['PORT']}/webhook", data=body, method="POST",
    headers={"Content-Type": "application/json", "X-GitHub-Event": "ping",
             "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sig})
with urllib.request.urlopen(req, timeout=10) as resp:
    print(resp.status)
EOF
)"
[ "$code" = 200 ] || { echo "signed ping answered $code" >&2; exit 1; }
echo "  signed ping   $code"

# Everything but the model (no GPU) and GitHub (unreachable) must pass where jobs run.
doctor="$("${compose[@]}" exec -T worker-agent qwenfix doctor --json || true)"
DOCTOR="$doctor" python3 - <<'EOF'
import json, os
checks = json.loads(os.environ["DOCTOR"])
bad = [c for c in checks if not c["ok"] and c["name"] not in ("model", "github")]
for c in checks:
    print(f"  doctor {c['name']:<9} {'ok' if c['ok'] else 'FAILED'}: {c['detail'][:90]}")
if bad:
    raise SystemExit("doctor failed: " + ", ".join(c["name"] for c in bad))
EOF
echo "compose stack healthy (${services[*]}); $root/deploy/compose.yaml checked"
