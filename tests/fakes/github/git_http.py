"""Git's smart HTTP protocol, served by `git http-backend` (CGI) from bare repositories."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path


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
) -> tuple[int, dict[str, str], bytes]:
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
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
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
