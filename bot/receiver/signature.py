"""GitHub's webhook signature: HMAC-SHA256 of the raw body, hex, after `sha256=`."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    # One-shot in C (OpenSSL), without building an HMAC object per delivery.
    return PREFIX + hmac.digest(secret.encode("utf-8"), body, "sha256").hex()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when `header` is the signature of `body` under any of `secrets` (rotation).

    Every secret is tried, so the time taken does not tell which one matched."""
    if not header or not header.startswith(PREFIX):
        return False
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body), header)
    return matched
