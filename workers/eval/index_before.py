"""Run a command whose pip sees the package index as it was before a date.

    python3 index_before.py 2025-01-01 -- sh -c 'pip install -e .[test]'

Old code installed today gets today's dependencies, and some no longer work with it
(docutils 0.22 dropped the `roman` module Sphinx 3 imports). A task's environment is
the one its tests passed in, so its installs see only files uploaded before the date:
this serves the index on 127.0.0.1 for the command's lifetime, reading the upstream one
(`PIP_INDEX_URL`, else PyPI) through its JSON API (PEP 691) and leaving out the files
whose upload time (PEP 700) is not before the date. Files still download from where
the index says. Build isolation's own pip inherits the index, so build requirements are
dated too; an exact pin newer than the date fails with pip's "no matching
distribution".

This file runs inside sandboxes, on whatever Python the task's image has (3.7 and up):
the standard library only, and nothing of qwenfix.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
UPSTREAM_TIMEOUT_S = 60


def dated(page: dict[str, Any], before: str) -> dict[str, Any]:
    """The index page (PEP 691 JSON) without the files uploaded on or after `before`
    (an ISO date or time; PyPI's times are ISO in UTC, so they compare as text)."""
    kept = [f for f in page.get("files", []) if str(f.get("upload-time", "")) < before]
    return dict(page, files=kept)


def as_html(page: dict[str, Any]) -> str:
    """The same page as PEP 503 HTML, for a pip too old to ask for JSON."""
    links = []
    for f in page.get("files", []):
        url = f["url"]
        digest = f.get("hashes", {}).get("sha256")
        if digest:
            url += "#sha256=" + digest
        attributes = ""
        if f.get("requires-python"):
            attributes += f' data-requires-python="{html.escape(f["requires-python"])}"'
        if f.get("yanked"):
            reason = f["yanked"] if isinstance(f["yanked"], str) else ""
            attributes += f' data-yanked="{html.escape(reason)}"'
        name = html.escape(f["filename"])
        links.append(f'<a href="{html.escape(url)}"{attributes}>{name}</a><br/>')
    body = "\n".join(links)
    return f"<!DOCTYPE html><html><body>\n{body}\n</body></html>\n"


def handler_for(upstream: str, before: str) -> type[BaseHTTPRequestHandler]:
    class DatedIndex(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) != 2 or parts[0] != "simple":
                self.send_error(404, "only /simple/<project>/ is served")
                return
            request = urllib.request.Request(
                f"{upstream}/{parts[1]}/", headers={"Accept": JSON_TYPE}
            )
            try:
                with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_S) as response:
                    page = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                self.send_error(exc.code, f"upstream: {exc.reason}")
                return
            except (OSError, ValueError) as exc:
                sys.stderr.write(f"index_before: {request.full_url}: {exc}\n")
                self.send_error(502, f"upstream index unreachable: {exc}")
                return
            page = dated(page, before)
            if JSON_TYPE in self.headers.get("Accept", ""):
                body, kind = json.dumps(page).encode(), JSON_TYPE
            else:
                body, kind = as_html(page).encode(), "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(
            self, format: str, *args: Any
        ) -> None:  # pip's own output says what it fetched
            pass

    return DatedIndex


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: index_before.py DATE -- COMMAND...\n")
        return 2
    before, command = argv[1], argv[3:]
    upstream = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(upstream, before))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, PIP_INDEX_URL=f"http://127.0.0.1:{server.server_port}/simple/")
    # An extra index would offer what the date leaves out.
    env.pop("PIP_EXTRA_INDEX_URL", None)
    try:
        return subprocess.call(command, env=env)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
