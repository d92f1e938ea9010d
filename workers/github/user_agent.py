"""How qwenfix names itself to GitHub: on every API call and every git HTTP request.

GitHub asks integrations for a User-Agent that names them, so that its operators can tell
whose traffic it is and whom to contact; the version says which release sent it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

HOMEPAGE = "https://github.com/your-org/qwenfix"


def _version() -> str:
    try:
        return version("qwenfix")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


USER_AGENT = f"qwenfix/{_version()} (+{HOMEPAGE})"
