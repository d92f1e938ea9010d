"""What looks like a credential: used to keep files out of the model's context and, later,
to block a push whose added lines carry one."""

from __future__ import annotations

import fnmatch
import re

# Prefixes distinctive enough to need no word boundary before them: a token glued to other
# text ("xxghp_…", inside a blob) is still a token. Shorter ones keep theirs.
SECRET_PATTERNS: dict[str, re.Pattern[bytes]] = {
    "GitHub token": re.compile(rb"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    "private key": re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Slack token": re.compile(rb"xox[abposr]-[A-Za-z0-9-]{10,}"),
    "GitLab token": re.compile(rb"glpat-[A-Za-z0-9_-]{20,}"),
    "Google API key": re.compile(rb"\bAIza[0-9A-Za-z_-]{35}\b"),
    "OpenAI-style key": re.compile(rb"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}"),
}

SECRET_FILE_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".git-credentials",
    "*.keystore",
    "*.jks",
)


def secret_in(data: bytes) -> str | None:
    """The kind of the first credential-like string in `data`, or None."""
    for kind, pattern in SECRET_PATTERNS.items():
        if pattern.search(data):
            return kind
    return None


_SECRET_NAME = re.compile("|".join(fnmatch.translate(p) for p in SECRET_FILE_NAMES))


def secret_like_name(path: str) -> bool:
    return _SECRET_NAME.match(path.rsplit("/", 1)[-1]) is not None
