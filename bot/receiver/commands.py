"""Reading commands out of comment text: `@qwenfix fix …`, `/qwenfix fix …`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


VERBS = ("fix", "review", "maintain", "help", "stop", "retry")
# What may follow a word for it to stand alone, as a command does.
_PUNCTUATION = re.compile(r"[.!?]*")


@dataclass(frozen=True)
class Command:
    verb: str
    """One of VERBS, or "" (a bare mention: no verb, or a sentence)."""
    text: str
    """Free text after the verb: extra instructions (for a bare mention, all of it)."""
    unknown: str = ""
    """The word given as a verb that is none (`@qwenfix frobnicate`); the verb is then
    "help", which answers with the list of commands."""
    leading: bool = True
    """The mention opens its line: addressed to qwenfix, not a mention in passing
    ("thanks @qwenfix"). `/qwenfix` always does."""


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
    if verb in VERBS:
        return Command(verb=verb, text=rest)
    line_start = text.rfind("\n", 0, match.start()) + 1
    leading = not text[line_start : match.start()].strip()
    said = f"{match.group('verb')} {rest}".strip()
    if leading and verb[:1].isalpha() and _PUNCTUATION.fullmatch(rest):
        return Command(verb="help", text="", unknown=match.group("verb"))
    return Command(verb="", text=said, leading=leading)
