"""The events of a run's trajectory: written by the fix engine (JSONL, and the job's store
through its sink), read by the dashboard. One list, so writer and reader cannot drift."""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    START = "start"
    """The run's base commit, issue and repository config."""
    UPGRADE = "upgrade"
    SETUP = "setup"
    SETUP_REUSED = "setup_reused"
    """A prepared sandbox from the setup cache stood in for setup."""
    SNAPSHOT = "snapshot"
    AUTOFIX = "autofix"
    CHECK = "check"
    TESTS_BEFORE = "tests_before"
    TESTS_HEAD = "tests_head"
    PACK = "pack"
    REPACK = "repack"
    REQUEST = "request"
    MESSAGE = "message"
    VERIFY = "verify"
    STOP = "stop"
    DIFF = "diff"
    RESULT = "result"


SANDBOX_STEPS = frozenset(
    {Event.SETUP, Event.UPGRADE, Event.AUTOFIX, Event.CHECK, Event.TESTS_BEFORE, Event.TESTS_HEAD}
)
"""Events that are a command run in the sandbox (its seconds count as sandbox time)."""
