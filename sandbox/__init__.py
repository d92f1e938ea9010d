"""Isolated execution for qwenfix: a Sandbox protocol and its backends.

This package imports nothing else of qwenfix, so it can be reused or replaced alone.
"""

from sandbox.errors import ImageMissing, SandboxError, SandboxUnavailable
from sandbox.protocol import CommandResult, Sandbox, SandboxBackend, SandboxSpec, Snapshot

__all__ = [
    "CommandResult",
    "ImageMissing",
    "Sandbox",
    "SandboxBackend",
    "SandboxError",
    "SandboxSpec",
    "SandboxUnavailable",
    "Snapshot",
]
