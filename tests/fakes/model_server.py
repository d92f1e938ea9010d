"""A scripted model server that speaks the OpenAI chat-completions API like vLLM.

Used by the demo and the tests in place of a GPU: a real HTTP server on 127.0.0.1 that
replays a script, one step per request. A step answers with OpenAI `tool_calls` (vLLM with
`--tool-call-parser qwen3_coder`), with raw Qwen3-Coder `<tool_call>` text (the parser
off), with literal text, with an HTTP error, or after a delay. Usage is reported like vLLM
with prefix caching: cached tokens are the prefix shared with the previous request.

Script (JSON)::

    {"mode": "openai" | "raw",            # how tool calls are sent; default "openai"
     "steps": [
        {"tool_calls": [{"name": "view", "arguments": {"path": "calc.py"}}]},
        {"content": "prose", "tool_calls": [...], "mode": "raw"},
        {"text": "literal assistant content"},
        {"raw_tool_calls": [...]},         # OpenAI tool_calls sent as given (malformed ones)
        {"status": 500, "body": "..."},   # an HTTP error instead of a completion
        {"delay_s": 30},                   # answer late (combined with any of the above)
        {"cut_after_bytes": 40, ...},      # the connection breaks mid-answer
        {"finish_reason": "length", ...}   # the generation hit max_tokens (text cut short)
     ]}

With `max_model_len`, the server keeps a context window as vLLM does: prompts are counted
exactly (Qwen3's tokenizer over the Qwen3-Coder chat format), usage reports that count, and
a request whose prompt and `max_tokens` do not fit is refused with HTTP 400, unscripted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from workers.engine.llm.prompt_format import PromptCounter
from workers.engine.llm.qwen3coder import render_tool_calls

EXHAUSTED_TEXT = "I have nothing more to do."
CACHE_BLOCK = 16  # vLLM caches whole blocks of tokens
CHARS_PER_TOKEN = 4


@dataclass
class ScriptedModelServer:
    script: dict[str, Any]
    model: str = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    host: str = "127.0.0.1"
    port: int = 0
    max_model_len: int | None = None
    """A window to keep, like vLLM's `--max-model-len`; None: 262,144, not enforced."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Requests refused for not fitting the window, with their counts."""
    prompt_counts: list[int] = field(default_factory=list)
    """The exact prompt size of each request answered, when keeping a window."""
    _counter: PromptCounter | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _previous_prompt: str = ""

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> ScriptedModelServer:
        return cls(json.loads(path.read_text()), **kwargs)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def start(self) -> ScriptedModelServer:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ---------------------------------------------------------------

    def parser_off(self, body: dict[str, Any]) -> str | None:
        """vLLM's refusal of a forced tool choice when served without a tool parser (the
        "raw" mode), or None."""
        choice = body.get("tool_choice")
        if self.script.get("mode") != "raw" or choice in (None, "auto", "none"):
            return None
        return (
            f"tool_choice {json.dumps(choice)} requires --enable-auto-tool-choice and "
            "--tool-call-parser to be set"
        )

    def too_long(self, body: dict[str, Any]) -> str | None:
        """vLLM's refusal of a request that does not fit the window, or None."""
        if self.max_model_len is None:
            return None
        with self._lock:
            if self._counter is None:
                self._counter = PromptCounter()
            prompt = self._counter.count(body.get("messages") or [], body.get("tools") or [])
        asked = int(body.get("max_tokens") or 0)
        if prompt + asked <= self.max_model_len:
            with self._lock:
                self.prompt_counts.append(prompt)
            return None
        self.refused.append({"prompt_tokens": prompt, "max_tokens": asked})
        return (
            f"This model's maximum context length is {self.max_model_len} tokens. However, "
            f"you requested {prompt + asked} tokens ({prompt} in the messages, {asked} in "
            "the completion). Please reduce the length of the messages or completion."
        )

    def next_step(
        self, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | str, float, int | None]:
        with self._lock:
            index = len(self.requests)
            self.requests.append(body)
            steps = self.script.get("steps", [])
            step = steps[index] if index < len(steps) else {"text": EXHAUSTED_TEXT}
            prompt = json.dumps([body.get("messages"), body.get("tools")], sort_keys=True)
            shared = _common_prefix(prompt, self._previous_prompt)
            self._previous_prompt = prompt
        delay = float(step.get("delay_s", 0))
        cut = int(step["cut_after_bytes"]) if "cut_after_bytes" in step else None
        if "status" in step:
            return int(step["status"]), str(step.get("body", "scripted failure")), delay, cut
        message, finish = self._message(step)
        finish = str(step.get("finish_reason", finish))
        completion_text = json.dumps(message)
        prompt_tokens = len(prompt) // CHARS_PER_TOKEN
        cached = (shared // CHARS_PER_TOKEN) // CACHE_BLOCK * CACHE_BLOCK
        if self.max_model_len is not None and self.prompt_counts:
            exact = self.prompt_counts[-1]
            cached = min(exact, cached * exact // max(1, prompt_tokens)) // CACHE_BLOCK
            cached, prompt_tokens = cached * CACHE_BLOCK, exact
        return (
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": max(1, len(completion_text) // CHARS_PER_TOKEN),
                    "total_tokens": prompt_tokens + len(completion_text) // CHARS_PER_TOKEN,
                    "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens)},
                },
            },
            delay,
            cut,
        )

    def _message(self, step: dict[str, Any]) -> tuple[dict[str, Any], str]:
        mode = step.get("mode", self.script.get("mode", "openai"))
        if "text" in step:
            return {"role": "assistant", "content": step["text"]}, "stop"
        if "raw_tool_calls" in step:
            return {
                "role": "assistant",
                "content": step.get("content"),
                "tool_calls": step["raw_tool_calls"],
            }, "tool_calls"
        calls = step.get("tool_calls") or []
        content = step.get("content")
        if not calls:
            return {"role": "assistant", "content": content or ""}, "stop"
        if mode == "raw":
            text = render_tool_calls((c["name"], c.get("arguments", {})) for c in calls)
            full = f"{content}\n{text}" if content else text
            return {"role": "assistant", "content": full}, "stop"
        return {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
                    "type": "function",
                    "function": {
                        "name": c["name"],
                        "arguments": json.dumps(c.get("arguments", {})),
                    },
                }
                for c in calls
            ],
        }, "tool_calls"


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _valid_request(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            return f"invalid message: {str(m)[:100]}"
    return None


def _make_handler(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, payload: dict[str, Any] | str) -> None:
            data = (json.dumps(payload) if isinstance(payload, dict) else payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": server.model,
                                "object": "model",
                                "max_model_len": server.max_model_len or 262_144,
                            }
                        ],
                    },
                )
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"error": {"message": "invalid JSON"}})
                return
            problem = _valid_request(body) or server.parser_off(body) or server.too_long(body)
            if problem:
                self._send(400, {"error": {"message": problem, "type": "BadRequestError"}})
                return
            status, payload, delay, cut = server.next_step(body)
            if delay:
                time.sleep(delay)
            if status != 200 and isinstance(payload, str):
                payload = {"error": {"message": payload, "code": status}}
            if cut is not None:
                self._send_cut(status, payload, cut)
            else:
                self._send(status, payload)

        def _send_cut(self, status: int, payload: dict[str, Any] | str, cut: int) -> None:
            """The whole answer's length announced, its first `cut` bytes sent, then the
            connection closed: a server that died mid-answer."""
            data = (json.dumps(payload) if isinstance(payload, dict) else payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True

    return Handler
