"""Qwen3-Coder's native tool-call text format, both directions.

The model writes calls as::

    <tool_call>
    <function=NAME>
    <parameter=P>
    VALUE
    </parameter>
    </function>
    </tool_call>

vLLM's `qwen3_coder` parser turns this into OpenAI `tool_calls`; when a server runs
without it (or misses one), the text reaches us raw and is parsed here. Values are raw
text typed by the tool's JSON schema. The parser is lenient about missing closing tags,
because a model cut off by `max_tokens` leaves them out.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

_CALL_START = re.compile(r"<tool_call>|<function=")
_FUNCTION = re.compile(r"<function=([^>\n]*)>")
_PARAMETER = re.compile(r"<parameter=([^>\n]*)>")
_FUNCTION_END = re.compile(r"</function>|</tool_call>")
_VALUE_END = re.compile(r"</parameter>|<parameter=|</function>|</tool_call>")


class ParsedCall(BaseModel):
    name: str
    arguments: dict[str, Any]


class ParsedCalls(BaseModel):
    content: str | None
    calls: list[ParsedCall]


def _schema_types(tools: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """name -> parameter -> JSON types it admits."""
    out: dict[str, dict[str, set[str]]] = {}
    for tool in tools:
        fn = tool.get("function", tool)
        props = (fn.get("parameters") or {}).get("properties") or {}
        params: dict[str, set[str]] = {}
        for pname, pschema in props.items():
            params[pname] = _types_of(pschema)
        out[str(fn.get("name"))] = params
    return out


def _types_of(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    found: set[str] = set()
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            found |= _types_of(sub)
    return found or {"string"}


def _convert(value: str, types: set[str]) -> Any:
    if "string" in types:
        return value
    text = value.strip()
    if "null" in types and text.lower() in ("null", "none"):
        return None
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
        except ValueError:
            pass
    if types & {"object", "array"}:
        try:
            return json.loads(text)
        except ValueError:
            pass
        # vLLM's parser also reads Python literals ({'a': 1}, [True, None]): models write them.
        try:
            literal = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            literal = None
        if isinstance(literal, dict | list):
            return literal
    return value  # left as text; the tool's own validation explains what is wrong


def _strip_one_newline(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def parse_tool_calls(text: str, tools: list[dict[str, Any]]) -> ParsedCalls:
    """Split model text into the prose before the first call and the calls themselves.

    Calls to functions that are not among `tools` are kept, for the toolbox to refuse.
    """
    first = _CALL_START.search(text)
    head = text if first is None else text[: first.start()]
    content = head.strip() or None
    if first is None:
        return ParsedCalls(content=content, calls=[])

    known = _schema_types(tools)
    calls: list[ParsedCall] = []
    position = first.start()
    while (match := _FUNCTION.search(text, position)) is not None:
        # A function runs to its `</function>` (or the call's end), as vLLM's parser reads
        # it: a value may then hold `<function=` itself (a file about tool calls).
        close = _FUNCTION_END.search(text, match.end())
        body = text[match.end() : close.start() if close else len(text)]
        position = close.end() if close else len(text)
        name = match.group(1).strip()
        # An unknown function is kept (its values as text): the toolbox answers it with
        # an error that names it and the tools there are, instead of losing it silently.
        params = known.get(name, {})
        calls.append(ParsedCall(name=name, arguments=_arguments(body, params)))
    return ParsedCalls(content=content, calls=calls)


def _arguments(body: str, params: dict[str, set[str]]) -> dict[str, Any]:
    """The parameters of one function's body, in order. A `<parameter=x>` inside a value
    starts the next parameter only when `x` is one of the function's parameters (as
    vLLM's parser reads it): code that writes tool-call templates stays one value."""
    arguments: dict[str, Any] = {}
    position = 0
    while (pmatch := _PARAMETER.search(body, position)) is not None:
        pname = pmatch.group(1).strip()
        stop = _value_end(body, pmatch.end(), params)
        raw = body[pmatch.end() : stop.start() if stop else len(body)]
        arguments[pname] = _convert(_strip_one_newline(raw), params.get(pname, {"string"}))
        if stop is None:
            break
        position = stop.end() if stop.group(0) == "</parameter>" else stop.start()
    return arguments


def _value_end(body: str, start: int, params: dict[str, set[str]]) -> re.Match[str] | None:
    position = start
    while (stop := _VALUE_END.search(body, position)) is not None:
        inner = _PARAMETER.match(body, stop.start())
        if inner is None or not params or inner.group(1).strip() in params:
            return stop
        position = stop.end()
    return None


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_tool_calls(calls: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """The reverse of `parse_tool_calls`: (name, arguments) pairs as Qwen3-Coder text."""
    parts = []
    for name, arguments in calls:
        lines = ["<tool_call>", f"<function={name}>"]
        for pname, value in arguments.items():
            lines += [f"<parameter={pname}>", _render_value(value), "</parameter>"]
        lines += ["</function>", "</tool_call>"]
        parts.append("\n".join(lines))
    return "\n".join(parts)
