"""Every request, response, tool output, timing and token count, as JSONL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bot.contract.events import PAYLOADS, Event

Sink = Callable[[dict[str, Any]], None]
"""Also receives each record (the job's store, for the dashboard); must not raise."""


class Trajectory:
    """Append-only event log of one run. Use as a context manager so the file is closed."""

    def __init__(self, path: Path, sink: Sink | None = None) -> None:
        self.path = path
        self.sink = sink
        self._file: IO[str] | None = None
        self._start = time.monotonic()

    def __enter__(self) -> Trajectory:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def record(self, event: Event, **data: Any) -> None:
        if self._file is None:
            raise RuntimeError("trajectory is not open")
        model = PAYLOADS.get(event)
        if model is not None:
            # What the dashboard reads must be what is written: a mismatch is ours, and
            # fails here (pydantic's ValidationError) rather than on the dashboard.
            model.model_validate(data)
        line = {
            "event": event,
            "t": round(time.monotonic() - self._start, 3),
            "time": time.time(),
            **data,
        }
        self._file.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
        self._file.flush()
        if self.sink is not None:
            self.sink(line)


def read_trajectory(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
