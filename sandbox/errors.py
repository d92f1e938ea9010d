"""Errors raised by sandbox backends. A failed *command* is never an error: it is a result."""


class SandboxError(Exception):
    """The sandbox itself failed (could not start, copy, read or write)."""


class SandboxUnavailable(SandboxError):
    """The execution engine is not reachable or the image is missing; carries the fix."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(f"{message} ({hint})")
        self.hint = hint


class ImageMissing(SandboxUnavailable):
    """The engine answers, but the image to start from is not there."""

    def __init__(self, message: str, *, hint: str, image: str) -> None:
        super().__init__(message, hint=hint)
        self.image = image
