"""The honesty checks: replayed models that must score 100% and 0%.

- oracle: writes the gold patch's files through the agent's own `write_file` tool (and
  removes deleted ones with `bash`), then submits;
- noop: submits at once, and again, until the run stops.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from unidiff.patch import PatchSet

from workers.engine.llm.client import decode_response
from workers.engine.llm.types import Message, ToolSchema, Turn


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def oracle_script(checkout: Path, gold_patch: str) -> dict[str, Any]:
    """Steps that reproduce `gold_patch` on `checkout` (left unchanged)."""
    with tempfile.TemporaryDirectory(prefix="qwenfix-oracle-") as tmp:
        work = Path(tmp) / "tree"
        subprocess.run(
            ["git", "clone", "-q", "--no-hardlinks", str(checkout), str(work)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["git", "-C", str(work), "apply", "--whitespace=nowarn", "-"],
            input=gold_patch.encode(),
            check=True,
            capture_output=True,
        )
        steps = []
        for patched in PatchSet(gold_patch):
            if patched.is_removed_file:
                steps.append(_call("bash", command=f"rm -f -- '{patched.path}'"))
            else:
                steps.append(
                    _call(
                        "write_file", path=patched.path, content=(work / patched.path).read_text()
                    )
                )
    steps.append(_call("submit", summary="Applied the reference patch.", title="Oracle"))
    return {"steps": steps}


def noop_script() -> dict[str, Any]:
    return {"steps": [_call("submit", summary="Nothing to change.", title="Noop")] * 10}


EXHAUSTED = "I have nothing more to do."
CHARS_PER_TOKEN = 4  # an estimate: no tokenizer stands behind a replayed turn


class ReplayModel:
    """A `Model` that replays a script in-process, one step per `complete`: the honesty
    checks need no model server. Each reply is decoded by the real client's own decoder,
    so the loop sees the `Turn`s a server's answer would give."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.steps: list[dict[str, Any]] = list(script.get("steps", []))
        self.asked = 0

    def context_window(self) -> int | None:
        return None  # no server: the settings' window holds

    def complete(
        self, messages: list[Message], tools: list[ToolSchema], *, max_tokens: int | None = None
    ) -> Turn:
        step = self.steps[self.asked] if self.asked < len(self.steps) else {}
        self.asked += 1
        calls = step.get("tool_calls") or []
        message: dict[str, Any] = {"role": "assistant", "content": EXHAUSTED}
        if calls:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{self.asked}_{n}",
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                    }
                    for n, c in enumerate(calls)
                ],
            }
        prompt = len(json.dumps(messages)) // CHARS_PER_TOKEN
        return decode_response(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": max(1, len(json.dumps(message)) // CHARS_PER_TOKEN),
                },
            },
            tools,
        )
