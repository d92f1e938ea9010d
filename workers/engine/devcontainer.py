"""What a repository's dev container says it needs: its image, and its postCreateCommand as
the setup. The same rules as every other setup apply (network only while it runs, no
credentials); the container's other settings (features, a Dockerfile build, ports, mounts)
are not ours to follow."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

ReadFile = Callable[[str], bytes | None]

PATHS = (".devcontainer/devcontainer.json", ".devcontainer.json")
"""Where the Dev Container specification looks, in its order."""

# JSONC: // and /* */ comments outside strings, and trailing commas.
_JSONC = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


@dataclass(frozen=True)
class DevContainer:
    path: str
    image: str | None
    setup: str | None


def parse_jsonc(text: str) -> object:
    """`text` as JSON with comments and trailing commas, as devcontainer.json allows."""
    bare = _JSONC.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    # Trailing commas, outside strings only: strings are set aside while the commas go.
    strings: list[str] = []

    def keep(m: re.Match[str]) -> str:
        strings.append(m.group(0))
        return f'"\0{len(strings) - 1}"'

    masked = re.sub(r'"(?:\\.|[^"\\])*"', keep, bare)
    masked = _TRAILING_COMMA.sub(r"\1", masked)
    restored = re.sub(r'"\0(\d+)"', lambda m: strings[int(m.group(1))], masked)
    return json.loads(restored)


def _command(value: object) -> str | None:
    """A lifecycle command in any of its three forms: a shell string, an argv list, or
    named commands (run in turn here; the specification runs them in parallel)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    if isinstance(value, dict):
        parts = [c for v in value.values() if (c := _command(v))]
        return " && ".join(f"({p})" for p in parts) if parts else None
    return None


def devcontainer(paths: list[str], read: ReadFile) -> DevContainer | None:
    """The first dev container file, or None when there is none or it cannot be read (an
    unreadable one is ignored: it is the editor's file, not ours to refuse a job over)."""
    present = set(paths)
    path = next((p for p in PATHS if p in present), None)
    raw = read(path) if path else None
    if path is None or raw is None:
        return None
    try:
        data = parse_jsonc(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    image = data.get("image")
    return DevContainer(
        path=path,
        image=image.strip() if isinstance(image, str) and image.strip() else None,
        setup=_command(data.get("postCreateCommand")),
    )
