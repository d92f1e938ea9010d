#!/usr/bin/env bash
# Everything qwenfix needs on a fresh machine: system packages, a virtualenv with the
# project and its dev tools, a running Docker engine and the sandbox image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.qwenfix-installed
want="$(cat pyproject.toml uv.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing qwenfix and the dependencies uv.lock pins into .venv"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    # The uv that wrote uv.lock (deploy/Dockerfile installs the same); it then installs
    # exactly the locked versions, hashes checked, as the image does. --inexact leaves pip
    # and whatever else is in the venv alone.
    .venv/bin/python -m pip install -q "uv==0.13.9" 2>&1 | grep -v '^WARNING: Location' || true
    UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync -q --frozen --inexact --extra dev --extra eval --extra bench
    .venv/bin/python -c 'import workers, bot, sandbox, githubkit, tokenizers' \
        || { echo "installing Python dependencies failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
bash scripts/ensure-docker.sh
bash scripts/build-sandbox-image.sh
# The evaluation's second Python (tests/eval_tasks names 3.9).
bash scripts/build-sandbox-image.sh --python 3.9
