"""A package registry speaking npm's registry protocol on 127.0.0.1: packuments at
GET /NAME and tarballs at GET /NAME/-/NAME-VERSION.tgz, as npm fetches them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import send_body


def tarball(name: str, version: str, index_js: str) -> bytes:
    files = {
        "package/package.json": json.dumps({"name": name, "version": version, "main": "index.js"}),
        "package/index.js": index_js,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class NpmRegistry:
    def __init__(self) -> None:
        self.packages: dict[str, dict[str, bytes]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def publish(self, name: str, version: str, index_js: str) -> None:
        self.packages.setdefault(name, {})[version] = tarball(name, version, index_js)

    def packument(self, name: str) -> dict[str, Any]:
        versions = {}
        for version, data in self.packages[name].items():
            integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
            versions[version] = {
                "name": name,
                "version": version,
                "main": "index.js",
                "dist": {
                    "tarball": f"{self.url}{name}/-/{name}-{version}.tgz",
                    "shasum": hashlib.sha1(data).hexdigest(),
                    "integrity": integrity,
                },
            }
        latest = max(self.packages[name], key=lambda v: tuple(int(p) for p in v.split(".")))
        return {"name": name, "dist-tags": {"latest": latest}, "versions": versions}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].strip("/")
                if "/-/" in path:
                    name, _, file = path.partition("/-/")
                    version = file.removeprefix(f"{name}-").removesuffix(".tgz")
                    body = registry.packages.get(name, {}).get(version)
                    kind = "application/octet-stream"
                elif path in registry.packages:
                    body = json.dumps(registry.packument(path)).encode()
                    kind = "application/json"
                else:
                    body = None
                if body is None:
                    self.send_error(404)
                    return
                send_body(self, body, kind)

            def log_message(self, *args: Any) -> None:
                return None

        return Handler
