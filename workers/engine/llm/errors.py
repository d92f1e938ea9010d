"""Model errors carry what the caller needs to decide and to tell the user."""

from __future__ import annotations


class ModelError(Exception):
    """The model server could not produce a turn."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class ModelUnavailable(ModelError):
    """Transient failures (connection, timeout, 429, 5xx) outlasted every retry."""


class ModelRequestRejected(ModelError):
    """The server refused the request itself (a 4xx other than 429); retrying won't help."""


class TransientModelError(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
