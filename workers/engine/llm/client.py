"""OpenAI-compatible chat-completions client, aimed at vLLM serving Qwen3-Coder.

The retry policy is small and explicit: connection errors, timeouts, 429 and 5xx are
retried with exponential backoff (honouring Retry-After); other 4xx are not.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel

from workers.engine.llm.errors import (
    ModelRequestRejected,
    ModelUnavailable,
    TransientModelError,
)
from workers.engine.llm.qwen3coder import parse_tool_calls
from workers.engine.llm.types import Message, ToolCall, ToolSchema, Turn, Usage

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


class Sampling(BaseModel):
    """Qwen3-Coder's recommended sampling settings."""

    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    repetition_penalty: float = 1.05
    max_tokens: int = 8192


class OpenAICompatibleModel:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        timeout_s: float = 600.0,
        max_retries: int = 4,
        backoff_s: float = 2.0,
        sampling: Sampling | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sampling = sampling or Sampling()
        self._sleep = sleep
        self._window: int | None = None
        """The server's window once asked; 0 when it did not say."""
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAICompatibleModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_body(self, messages: list[Message], tools: list[ToolSchema]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            # top_k and repetition_penalty are vLLM extensions ("extra body" in the SDK).
            **self.sampling.model_dump(),
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        return body

    def context_window(self) -> int | None:
        """`max_model_len` of the served model, from vLLM's `/v1/models`; None when the
        server does not say (not vLLM) or cannot be asked now."""
        if self._window is not None:
            return self._window or None
        try:
            response = self._http.get("/models", timeout=10.0)
            entries = response.json().get("data") or [] if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("could not ask %s for its context window: %s", self.base_url, exc)
            return None
        ours = [e for e in entries if isinstance(e, dict) and e.get("id") == self.model]
        found = (ours or entries or [{}])[0]
        window = found.get("max_model_len") if isinstance(found, dict) else None
        self._window = window if isinstance(window, int) and window > 0 else 0
        return self._window or None

    def complete(
        self, messages: list[Message], tools: list[ToolSchema], *, max_tokens: int | None = None
    ) -> Turn:
        body = self.request_body(messages, tools)
        if max_tokens is not None:
            body["max_tokens"] = min(max_tokens, body.get("max_tokens") or max_tokens)
        attempts = self.max_retries + 1
        last: TransientModelError | None = None
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                data = self._post(body)
                turn = decode_response(data, tools)
                turn.latency_s = round(time.monotonic() - started, 3)
                return turn
            except TransientModelError as exc:
                last = exc
                if attempt == attempts:
                    break
                delay = min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), MAX_BACKOFF_S)
                log.warning(
                    "model attempt %d/%d failed (%s); retry in %.1fs", attempt, attempts, exc, delay
                )
                self._sleep(delay)
        if last is None:  # pragma: no cover - attempts is at least one
            raise RuntimeError("no attempt was made")
        raise ModelUnavailable(
            f"model server at {self.base_url} failed {attempts} time(s); last: {last}",
            status=last.status,
            attempts=attempts,
        )

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post("/chat/completions", json=body)
        except httpx.TransportError as exc:
            raise TransientModelError(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientModelError(
                f"HTTP {status}: {_excerpt(response.text)}",
                status=status,
                retry_after=_retry_after(response),
            )
        if status >= 400:
            raise ModelRequestRejected(
                f"model server rejected the request: HTTP {status}: {_excerpt(response.text)}",
                status=status,
            )
        try:
            data = response.json()
        except ValueError as exc:
            # A 200 with a body cut short: the connection broke mid-response.
            raise TransientModelError(f"response is not JSON: {_excerpt(response.text)}") from exc
        if not isinstance(data, dict) or not data.get("choices"):
            raise TransientModelError(f"response has no choices: {_excerpt(response.text)}")
        return data


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def decode_response(data: dict[str, Any], tools: list[ToolSchema]) -> Turn:
    """Decode one chat-completions response into a Turn.

    OpenAI `tool_calls` are used when present; otherwise Qwen3-Coder `<tool_call>` text in
    the content is parsed client-side.
    """
    choice = data["choices"][0]
    received = choice.get("message") or {}
    content = received.get("content")
    raw_calls = received.get("tool_calls") or []
    # Kept exactly as received (minus empty fields that do not reach the chat template),
    # so that sending it back reproduces the same prompt prefix.
    message: Message = {"role": "assistant", "content": content}
    if raw_calls:
        message["tool_calls"] = raw_calls

    calls: list[ToolCall] = []
    raw_text = False
    if raw_calls:
        for raw in raw_calls:
            calls.append(_decode_openai_call(raw))
    elif isinstance(content, str) and ("<tool_call>" in content or "<function=" in content):
        parsed = parse_tool_calls(content, tools)
        raw_text = True
        content = parsed.content
        calls = [
            ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=c.name, arguments=c.arguments)
            for c in parsed.calls
        ]
    usage_data = data.get("usage") or {}
    details = usage_data.get("prompt_tokens_details") or {}
    usage = Usage(
        prompt_tokens=int(usage_data.get("prompt_tokens") or 0),
        completion_tokens=int(usage_data.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )
    return Turn(
        message=message,
        content=content,
        tool_calls=calls,
        usage=usage,
        finish_reason=choice.get("finish_reason"),
        raw_tool_text=raw_text,
    )


def _decode_openai_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    call_id = str(raw.get("id") or f"call_{uuid.uuid4().hex[:12]}")
    name = str(function.get("name") or "")
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, arguments=arguments)
    try:
        decoded = json.loads(arguments or "{}")
    except (TypeError, ValueError) as exc:
        return ToolCall(id=call_id, name=name, error=f"arguments are not valid JSON: {exc}")
    if not isinstance(decoded, dict):
        return ToolCall(id=call_id, name=name, error="arguments must be a JSON object")
    return ToolCall(id=call_id, name=name, arguments=decoded)
