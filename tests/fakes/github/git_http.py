"""Git's smart HTTP protocol, served by `git http-backend` (CGI) from bare repositories."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

# GitHub refuses an App's push that adds, changes or removes a workflow unless its token
# has `workflows: write`; a pre-receive hook does the same here.
_PRE_RECEIVE = r"""#!/bin/sh
[ "$FAKE_GITHUB_WORKFLOWS" = write ] && exit 0
zero=0000000000000000000000000000000000000000
while read old new ref; do
    [ "$new" = "$zero" ] && continue
    if [ "$old" = "$zero" ]; then range="$new --not --all"; else range="$old..$new"; fi
    found=$(git log --format= --name-only $range | grep '^\.github/workflows/' | head -n 1)
    if [ -n "$found" ]; then
        echo "refusing to allow a GitHub App to create or update workflow" \
            "\`$found\` without \`workflows\` permission" >&2
        exit 1
    fi
done
"""


def _hooks(root: Path) -> Path:
    hooks = root / ".hooks"
    hook = hooks / "pre-receive"
    if not hook.exists():
        hooks.mkdir(exist_ok=True)
        hook.write_text(_PRE_RECEIVE)
        hook.chmod(0o755)
    return hooks


async def http_backend(
    root: Path,
    *,
    method: str,
    path: str,
    query: str,
    content_type: str,
    content_encoding: str,
    body: bytes,
    user: str,
    workflows: str = "",
) -> tuple[int, dict[str, str], bytes]:
    """`workflows`: the token's `workflows` permission ("write" lets a push change them)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": user,
        "REMOTE_ADDR": "127.0.0.1",
        # Pushes are allowed for authenticated users (we authenticated before calling).
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
        "GIT_CONFIG_KEY_1": "core.hooksPath",
        "GIT_CONFIG_VALUE_1": str(_hooks(root)),
        "FAKE_GITHUB_WORKFLOWS": workflows,
    }
    if content_encoding:
        env["HTTP_CONTENT_ENCODING"] = content_encoding
    proc = await asyncio.to_thread(
        subprocess.run,
        ["git", "http-backend"],
        input=body,
        env=env,
        capture_output=True,
        check=False,
    )
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    status = 200
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    if proc.returncode != 0 and not proc.stdout:
        return 500, {}, proc.stderr
    return status, headers, payload
