"""The dated index in front of a real index over HTTP, with the real pip: what a task's
installs see is the project as it was before the date."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import workers.eval.index_before as index_before
from tests.helpers import send_body, wheel

SCRIPT = Path(index_before.__file__)
UPLOADED = {"1.0": "2020-05-01T10:00:00.000000Z", "2.0": "2022-05-01T10:00:00.000000Z"}


def wheel_file(directory: Path, version: str) -> Path:
    path = directory / f"qwenfix_dated-{version}-py3-none-any.whl"
    path.write_bytes(wheel("qwenfix_dated", version, f"VERSION = {version!r}\n"))
    return path


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    """An index of one project with a release of 2020 and one of 2022 (PEP 691 + 700)."""
    wheels = {p.name: p for p in (wheel_file(tmp_path, v) for v in UPLOADED)}

    class Index(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]
            if self.path.rstrip("/") == "/simple/qwenfix-dated":
                files = [
                    {
                        "filename": name,
                        "url": f"http://127.0.0.1:{port}/files/{name}",
                        "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                        "upload-time": UPLOADED[name.split("-")[1]],
                    }
                    for name, path in wheels.items()
                ]
                body = json.dumps({"meta": {"api-version": "1.1"}, "files": files}).encode()
                kind = index_before.JSON_TYPE
            elif self.path.startswith("/files/") and self.path[7:] in wheels:
                body, kind = wheels[self.path[7:]].read_bytes(), "application/octet-stream"
            else:
                self.send_error(404)
                return
            send_body(self, body, kind)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/simple"
    finally:
        server.shutdown()
        server.server_close()


def download(upstream: str, before: str, into: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
    return subprocess.run(
        [sys.executable, str(SCRIPT), before, "--", *command, "-d", str(into), "qwenfix-dated"],
        env={**os.environ, "PIP_INDEX_URL": upstream, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pip_gets_the_release_of_before_the_date(upstream: str, tmp_path: Path) -> None:
    done = download(upstream, "2021-01-01", tmp_path / "2021")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "2021").iterdir()] == ["qwenfix_dated-1.0-py3-none-any.whl"]
    later = download(upstream, "2023-01-01", tmp_path / "2023")
    assert later.returncode == 0, later.stderr
    assert [p.name for p in (tmp_path / "2023").iterdir()] == ["qwenfix_dated-2.0-py3-none-any.whl"]


def test_before_any_release_pip_says_nothing_matches(upstream: str, tmp_path: Path) -> None:
    done = download(upstream, "2019-01-01", tmp_path / "none")
    assert done.returncode != 0
    assert "qwenfix-dated" in done.stderr and "from versions: none" in done.stderr


def test_the_command_s_exit_code_is_the_script_s(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "2021-01-01", "--", "sh", "-c", "exit 7"], timeout=60
    )
    assert done.returncode == 7
    usage = subprocess.run([sys.executable, str(SCRIPT), "2021-01-01"], capture_output=True)
    assert usage.returncode == 2 and b"usage" in usage.stderr
