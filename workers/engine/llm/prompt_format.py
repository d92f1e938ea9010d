"""The prompt vLLM builds from a chat request for Qwen3-Coder, rendered here so that every
request is counted exactly, in tokens, before it is sent.

The text is what Qwen3-Coder's chat template makes of `messages` and `tools` (as vLLM
hands them over: tool-call arguments decoded from their JSON strings, `tojson` without
ASCII escapes, other values through Jinja's `string`). `tests/vllm` checks the count
against the `prompt_tokens` a real vLLM server reports for the same request. A server
whose template differs a little is absorbed by calibration: the window adds the largest
difference seen so far (see `workers.engine.agent.window`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workers.engine.context.tokens import TokenCounter

START, END = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM = (
    "You are Qwen, a helpful AI assistant that can interact with a computer to solve tasks."
)
TOOLS_HEAD = "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>"
TOOLS_TAIL = (
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with "
    "NO suffix:\n\n<tool_call>\n<function=example_function_name>\n"
    "<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\n"
    "that can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n"
    "<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner "
    "<function=...></function> block must be nested within <tool_call></tool_call> XML "
    "tags\n- Required parameters MUST be specified\n- You may provide optional reasoning "
    "for your function call in natural language BEFORE the function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your "
    "current knowledge and do not tell the user about function calls\n</IMPORTANT>"
)
# Special tokens split the text before byte-pair encoding, so a prompt's count is the sum
# of the counts of its pieces between them: earlier pieces are counted once per run.
_SEGMENT = re.compile(r"(?=<\|im_start\|>)")


def _string(value: Any) -> str:
    """Jinja's `string` filter: Python's str()."""
    return str(value)


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
        return _tojson(value)
    return _string(value)


def _extras(fields: Any, skip: tuple[str, ...]) -> str:
    if not isinstance(fields, Mapping):
        return ""
    return "".join(
        f"\n<{key}>{_value(value)}</{key}>" for key, value in fields.items() if key not in skip
    )


def _tool(entry: Mapping[str, Any]) -> str:
    fn = entry.get("function", entry)
    out = f"\n<function>\n<name>{fn.get('name')}</name>"
    if "description" in fn:
        out += f"\n<description>{_string(fn['description']).strip()}</description>"
    out += "\n<parameters>"
    params = fn.get("parameters")
    properties = params.get("properties") if isinstance(params, Mapping) else None
    if isinstance(properties, Mapping):
        for name, field in properties.items():
            out += f"\n<parameter>\n<name>{name}</name>"
            if "type" in field:
                out += f"\n<type>{_string(field['type'])}</type>"
            if "description" in field:
                out += f"\n<description>{_string(field['description']).strip()}</description>"
            out += _extras(field, ("name", "type", "description"))
            out += "\n</parameter>"
    out += _extras(params, ("type", "properties"))
    out += "\n</parameters>"
    out += _extras(fn, ("type", "name", "description", "parameters"))
    return out + "\n</function>"


def _arguments(raw: Any) -> Mapping[str, Any]:
    """vLLM decodes a replayed call's JSON arguments before the template sees them."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            return {}
    return raw if isinstance(raw, Mapping) else {}


def _assistant_calls(message: Mapping[str, Any]) -> str:
    out = START + "assistant"
    content = message.get("content")
    if isinstance(content, str) and content.strip():
        out += "\n" + content.strip() + "\n"
    for call in message["tool_calls"]:
        fn = call.get("function", call)
        out += f"\n<tool_call>\n<function={fn.get('name')}>\n"
        for name, value in _arguments(fn.get("arguments")).items():
            out += f"<parameter={name}>\n{_value(value)}\n</parameter>\n"
        out += "</function>\n</tool_call>"
    return out + END + "\n"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts: vLLM joins the text ones
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content)


def render_prompt(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    generation_prompt: bool = True,
) -> str:
    out = ""
    rest = list(messages)
    if rest and rest[0].get("role") == "system":
        out += START + "system\n" + _text(rest[0].get("content"))
        rest = rest[1:]
    elif tools:
        out += START + "system\n" + DEFAULT_SYSTEM
    if tools:
        out += TOOLS_HEAD + "".join(_tool(t) for t in tools) + TOOLS_TAIL
    if (messages and messages[0].get("role") == "system") or tools:
        out += END + "\n"
    for index, message in enumerate(rest):
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            out += _assistant_calls(message)
        elif role == "tool":
            if index > 0 and rest[index - 1].get("role") != "tool":
                out += START + "user\n"
            out += "<tool_response>\n" + _text(message.get("content")) + "\n</tool_response>\n"
            if index == len(rest) - 1 or rest[index + 1].get("role") != "tool":
                out += END + "\n"
        else:
            out += f"{START}{role}\n{_text(message.get('content'))}{END}\n"
    if generation_prompt:
        out += START + "assistant\n"
    return out


class PromptCounter:
    """Exact prompt sizes for one conversation. Pieces already counted are remembered,
    so a turn costs the tokenizer only what it added."""

    def __init__(self, tokens: TokenCounter | None = None) -> None:
        self.tokens = tokens or TokenCounter()
        self._known: dict[str, int] = {}

    def count(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
    ) -> int:
        pieces = [p for p in _SEGMENT.split(render_prompt(messages, tools)) if p]
        new = [p for p in dict.fromkeys(pieces) if p not in self._known]
        for piece, n in zip(new, self.tokens.count_many(new), strict=True):
            self._known[piece] = n
        return sum(self._known[p] for p in pieces)

    def count_text(self, text: str) -> int:
        return self.tokens.count(text)

    def shorten(self, text: str, tokens: int, note: str) -> str:
        """`text` cut to about `tokens` tokens, its head and tail kept around `note`
        (where an error and its traceback's last lines usually are)."""
        encoding = self.tokens.tokenizer.encode(text, add_special_tokens=False)
        if len(encoding.ids) <= tokens:
            return text
        keep = max(0, tokens - self.tokens.count(note) - 4)
        head, tail = keep * 2 // 3, keep - keep * 2 // 3
        offsets = encoding.offsets
        cut_from = offsets[head][0] if head < len(offsets) else len(text)
        cut_to = offsets[len(offsets) - tail][0] if tail else len(text)
        return f"{text[:cut_from]}\n{note}\n{text[cut_to:]}"
