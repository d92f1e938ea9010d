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
text typed by the tool's JSON schema. It reads what vLLM 0.32.0's parser reads
(tests/vllm/test_parser_parity.py holds the two side by side), except where vLLM loses
what the model meant: a value may hold the format's tags as text, Python literals and
`None` are read, and a value cut off by `max_tokens`, its close tag missing, is kept.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

_CALL_START = re.compile(r"<tool_call>|<function=")
# A name runs to `>`; `<function=x</function>` (no `>`) still names a call, as in vLLM.
_FUNCTION = re.compile(r"<function=([^>]*?)(?:>|(?=</function>))")
_PARAMETER = re.compile(r"<parameter=([^>\n]*)>")
# A close tag counts where what follows it is the format's next tag, so a value may hold
# `</function>` or `</tool_call>` text (a file about tool calls); vLLM stops at the first.
_PROPER_FUNCTION_END = re.compile(
    r"</function>(?=\s*(?:</tool_call>|<tool_call>|<function=|\Z))"
    r"|</tool_call>(?=\s*(?:<tool_call>|<function=|\Z))"
)
_FUNCTION_END = re.compile(r"</function>|</tool_call>")
_VALUE_TAG = re.compile(r"</parameter>|<parameter=([^>\n]*)>")
_PROPER_VALUE_END = re.compile(r"\s*(?:<parameter=|\Z)")

# vLLM's spellings of JSON Schema types (tool_parsers/utils.py `_TYPE_ALIASES`).
_ALIASES = {
    **dict.fromkeys(("str", "text", "varchar", "char", "enum"), "string"),
    **dict.fromkeys(
        ("int", "int32", "int64", "uint", "uint32", "uint64", "long", "short", "unsigned"),
        "integer",
    ),
    **dict.fromkeys(("float", "float32", "float64", "double"), "number"),
    "bool": "boolean",
    "dict": "object",
    **dict.fromkeys(("arr", "list", "sequence"), "array"),
}
_ENUM_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


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
        out[str(fn.get("name"))] = {p: _types_of(s) for p, s in props.items()}
    return out


def _types_of(schema: Any) -> set[str]:
    """Every type `schema` admits, as vLLM's `extract_types_from_schema` reads it."""
    if not isinstance(schema, Mapping):
        return {"string"}
    kind = schema.get("type")
    found = {kind} if isinstance(kind, str) else {k for k in kind or () if isinstance(k, str)}
    for value in schema.get("enum") or ():
        found.add(_enum_type(value))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            found |= _types_of(sub)
    return {_ALIASES.get(t.strip().lower(), t.strip().lower()) for t in found} or {"string"}


def _enum_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return "array" if isinstance(value, list) else "object"
    return next((name for kind, name in _ENUM_TYPES if isinstance(value, kind)), "string")


def _finite(value: Any) -> bool:
    """json.loads reads 1e999 as inf, which JSON cannot carry back out."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _json(text: str) -> tuple[bool, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return False, None
    return _finite(value), value


def _convert(value: str, types: set[str]) -> Any:
    """vLLM's `coerce_to_schema_type`: the first type, in the order null, integer, number,
    boolean, object, array, string, that reads the text (so `["string", "integer"]` reads
    "7" as 7, as vLLM does); text no type reads stays text for the tool's validation."""
    text = value.strip()
    # `None` as well as vLLM's `null`: Qwen writes Python as often as JSON.
    if "null" in types and text.lower() in ("null", "none"):
        return None
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):  # vLLM: an integral number is an int ("5.0" -> 5)
            return int(number) if number.is_integer() else number
    if "boolean" in types and text.lower() in ("true", "1", "false", "0"):
        return text.lower() in ("true", "1")
    if types & {"object", "array"}:
        ok, parsed = _json(text)
        if ok:
            return parsed
        # Beyond vLLM, which leaves these as text: Python literals ({'a': 1}, [True, None]),
        # because models write them and the tool would only refuse the text.
        try:
            literal = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            literal = None
        if isinstance(literal, dict | list) and _finite(literal):
            return literal
    if "string" in types:
        return value
    ok, parsed = _json(text)  # a type vLLM does not know: JSON if it is JSON, as there
    return parsed if ok else value


def _strip_one_newline(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


def parse_tool_calls(text: str, tools: list[dict[str, Any]]) -> ParsedCalls:
    """Split model text into the prose before the first call and the calls themselves.

    Calls to functions that are not among `tools` are kept, for the toolbox to refuse.
    Text between and after calls is dropped, as vLLM drops it.
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
        close = _PROPER_FUNCTION_END.search(text, match.end()) or _FUNCTION_END.search(
            text, match.end()
        )
        body = text[match.end() : close.start() if close else len(text)]
        position = close.end() if close else len(text)
        name = match.group(1).strip()
        # An unknown function is kept (its values as text): the toolbox answers it with
        # an error that names it and the tools there are, instead of losing it silently.
        params = known.get(name, {})
        calls.append(ParsedCall(name=name, arguments=_arguments(body, params)))
    return ParsedCalls(content=content, calls=calls)


def _arguments(body: str, params: dict[str, set[str]]) -> dict[str, Any]:
    """The parameters of one function's body, in order; a repeated one keeps its last
    value, and text outside parameters is ignored, as in vLLM."""
    arguments: dict[str, Any] = {}
    position = 0
    while (pmatch := _PARAMETER.search(body, position)) is not None:
        pname = pmatch.group(1).strip()
        stop, position = _value_end(body, pmatch.end(), params)
        raw = _strip_one_newline(body[pmatch.end() : stop])
        arguments[pname] = _convert(raw, params.get(pname, {"string"}))
    return arguments


def _value_end(body: str, start: int, params: dict[str, set[str]]) -> tuple[int, int]:
    """Where the value from `start` ends, and where the next parameter may begin.

    A value ends at a `</parameter>` followed by the next `<parameter=` or the function's
    end, or (its close tag missing) at a `<parameter=x>` whose x is the function's and
    whose own value closes that way. So a value may hold these tags as text (code that
    writes tool-call templates). Failing both, vLLM's reading: the first of either."""
    fallback: tuple[int, int] | None = None
    for tag in _VALUE_TAG.finditer(body, start):
        if tag.group(1) is None:  # </parameter>
            if _PROPER_VALUE_END.match(body, tag.end()):
                return tag.start(), tag.end()
            fallback = fallback or (tag.start(), tag.end())
        elif not params or tag.group(1).strip() in params:
            if _opens_properly(body, tag.end()):
                return tag.start(), tag.start()
            fallback = fallback or (tag.start(), tag.start())
    return fallback or (len(body), len(body))


def _opens_properly(body: str, start: int) -> bool:
    close = body.find("</parameter>", start)
    return close < 0 or _PROPER_VALUE_END.match(body, close + len("</parameter>")) is not None


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
