"""The fake GitHub's records: repositories, installation-token grants, injected faults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WRITE_LEVELS = {"admin": 4, "maintain": 3, "write": 2, "triage": 1, "read": 0}


def timestamp() -> str:
    """Now, as GitHub writes times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    headers: dict[str, str]
    message: str


@dataclass
class Grant:
    installation_id: int
    permissions: dict[str, str]
    repositories: list[str] | None
    expires: float


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    installation_id: int
    private: bool = False
    default_branch: str = "main"
    collaborators: dict[str, str] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    bare: Path | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"
