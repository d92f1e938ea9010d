"""Logging for every qwenfix process: plain text or JSON lines, each line carrying the
delivery id and the job id it belongs to (from context variables set where they are
known: the receiver per delivery, the worker per job)."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

DELIVERY: ContextVar[str | None] = ContextVar("qwenfix_delivery", default=None)
JOB: ContextVar[int | None] = ContextVar("qwenfix_job", default=None)
QUIET = ("httpx", "httpcore", "urllib3", "docker")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery = DELIVERY.get()
        record.job = JOB.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [
            f"{key} {value}"
            for key in ("delivery", "job")
            if (value := getattr(record, key, None)) is not None
        ]
        return f"[{', '.join(tags)}] {text}" if tags else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "delivery": getattr(record, "delivery", None),
            "job": getattr(record, "job", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one on stderr in `fmt` (text | json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings become records too (one format per line)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
