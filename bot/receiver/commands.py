"""Reading commands out of comment text: `@qwenfix fix …`, `/qwenfix fix …`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class Command:
    verb: str
    """fix | review | maintain | "" (a bare mention)."""
    text: str
    """Free text after the verb: extra instructions."""


def visible_text(body: str) -> str:
    """What a person reads as theirs: no quoted lines, code or HTML comments."""
    # Each pattern only where its marker occurs: comments run to many kilobytes, and
    # this runs on every delivery.
    if "<!--" in body:
        body = _HTML_COMMENT.sub("", body)
    if "```" in body or "~~~" in body:
        body = _FENCE.sub("", body)
    if "`" in body:
        body = _INLINE_CODE.sub("", body)
    if ">" not in body:
        return body
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">"))


def find_command(body: str | None, trigger: str) -> Command | None:
    """The first `@trigger VERB rest` (anywhere) or `/trigger VERB rest` (line start)."""
    if not body:
        return None
    lowered = body.lower()
    if f"@{trigger.lower()}" not in lowered and f"/{trigger.lower()}" not in lowered:
        return None  # most comments: no need to scan them with the full pattern
    word = re.escape(trigger)
    pattern = re.compile(
        rf"(?:(?<![\w@/-])@{word}\b|^\s*/{word}\b)[ \t]*(?P<verb>[A-Za-z-]*)[ \t]*(?P<rest>.*)",
        re.I | re.M,
    )
    text = visible_text(body)
    match = pattern.search(text)
    if match is None:
        return None
    verb = match.group("verb").lower()
    rest = match.group("rest").strip()
    # Whatever follows on later lines is part of the instructions too.
    after = text[match.end() :].strip()
    if after:
        rest = f"{rest}\n{after}".strip()
    if verb not in ("fix", "review", "maintain"):
        return Command(verb="", text=f"{match.group('verb')} {rest}".strip())
    return Command(verb=verb, text=rest)
