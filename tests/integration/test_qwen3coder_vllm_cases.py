"""vLLM's own non-streaming test cases for the `qwen3_coder` tool parser, as data.

Source: tests/tool_parsers/test_qwen3coder_tool_parser.py in vllm-project/vllm, at commit
049d8df27dda4fd0caffa289ea12bfe5a47ac794 (the tests that vLLM 0.32.0's parser, `qwen3_coder`
-> `Qwen3EngineToolParser`, is held to). vLLM is Copyright contributors to the vLLM
project and licensed under the Apache License, Version 2.0
(https://www.apache.org/licenses/LICENSE-2.0); these inputs and expectations are taken
from it, the harness around them is ours. No vLLM code is used or needed here.

Each case is the model's text, the request's tools, the calls as (name, arguments) and
the content. Where vLLM's test asserts less than a whole result (a name only, "no
crash"), the rest is what vLLM 0.32.0 returns, checked by tests/vllm/test_parser_parity.py.
The streaming, structural-tag and adjust_request tests have no counterpart here: we parse
a finished message only.
"""

from __future__ import annotations

from typing import Any

import pytest

from workers.engine.llm.qwen3coder import parse_tool_calls


def _tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city name"},
        "state": {"type": "string", "description": "The state code"},
        "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
    },
    "required": ["city", "state"],
}
AREA_PARAMS = {
    "type": "object",
    "properties": {
        "shape": {"type": "string"},
        "dimensions": {"type": "object"},
        "precision": {"type": "integer"},
    },
}
SAMPLE_TOOLS = [
    _tool("get_current_weather", WEATHER_PARAMS),
    _tool("calculate_area", AREA_PARAMS),
]
TYPES_TOOLS = [
    _tool(
        "test_types",
        {
            "type": "object",
            "properties": {
                "int_param": {"type": "integer"},
                "float_param": {"type": "float"},  # vLLM's alias for "number"
                "bool_param": {"type": "boolean"},
                "str_param": {"type": "string"},
                "obj_param": {"type": "object"},
            },
        },
    )
]
ANYOF_TOOLS = [
    _tool(
        "test_anyof",
        {
            "type": "object",
            "properties": {
                "anyof_int": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 5},
                "anyof_str": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "anyof_array": {
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
                },
                "anyof_obj": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                "type_as_array": {"type": ["integer", "null"]},
                "multi_non_null": {
                    "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]
                },
            },
        },
    )
]
RECORD_TOOLS = [
    _tool(
        "update_record",
        {
            "type": "object",
            "properties": {"data": {"anyOf": [{"type": "object"}, {"type": "null"}]}},
        },
    )
]
GREET_TOOLS = [_tool("greet", {"type": "object", "properties": {"message": {"type": "string"}}})]

DALLAS = {"city": "Dallas", "state": "TX", "unit": "fahrenheit"}
WEATHER_CALL = (
    "<tool_call>\n<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n"
    "<parameter=state>\nTX\n</parameter>\n<parameter=unit>\nfahrenheit\n</parameter>\n"
    "</function>\n</tool_call>"
)


def _weather(city: str, state: str, unit: str) -> str:
    return WEATHER_CALL.replace("Dallas", city).replace("TX", state).replace("fahrenheit", unit)


Call = tuple[str, dict[str, Any]]

# id -> (model output, tools, expected calls, expected content)
CASES: dict[str, tuple[str, list[dict[str, Any]], list[Call], str | None]] = {
    # test_extract_tool_calls_no_tools
    "no_tools": (
        "This is a test response without any tool calls",
        SAMPLE_TOOLS,
        [],
        "This is a test response without any tool calls",
    ),
    # test_extract_tool_calls[single_tool]
    "single_tool": (WEATHER_CALL, SAMPLE_TOOLS, [("get_current_weather", DALLAS)], None),
    # test_extract_tool_calls[single_tool_with_content]
    "single_tool_with_content": (
        "Sure! Let me check the weather for you." + WEATHER_CALL,
        SAMPLE_TOOLS,
        [("get_current_weather", DALLAS)],
        "Sure! Let me check the weather for you.",
    ),
    # test_extract_tool_calls[single_tool_multiline_param]
    "single_tool_multiline_param": (
        "<tool_call>\n<function=calculate_area>\n<parameter=shape>\nrectangle\n</parameter>\n"
        '<parameter=dimensions>\n{"width": 10, \n "height": 20}\n</parameter>\n'
        "<parameter=precision>\n2\n</parameter>\n</function>\n</tool_call>",
        SAMPLE_TOOLS,
        [
            (
                "calculate_area",
                {"shape": "rectangle", "dimensions": {"width": 10, "height": 20}, "precision": 2},
            )
        ],
        None,
    ),
    # test_extract_tool_calls[parallel_tools]
    "parallel_tools": (
        WEATHER_CALL + "\n" + _weather("Orlando", "FL", "fahrenheit"),
        SAMPLE_TOOLS,
        [
            ("get_current_weather", DALLAS),
            ("get_current_weather", {"city": "Orlando", "state": "FL", "unit": "fahrenheit"}),
        ],
        None,
    ),
    # test_extract_tool_calls[tool_with_typed_params]
    "tool_with_typed_params": (
        "Let me calculate that area for you.<tool_call>\n<function=calculate_area>\n"
        "<parameter=shape>\ncircle\n</parameter>\n"
        '<parameter=dimensions>\n{"radius": 15.5}\n</parameter>\n'
        "<parameter=precision>\n3\n</parameter>\n</function>\n</tool_call>",
        SAMPLE_TOOLS,
        [("calculate_area", {"shape": "circle", "dimensions": {"radius": 15.5}, "precision": 3})],
        "Let me calculate that area for you.",
    ),
    # test_extract_tool_calls_fallback_no_tags: vLLM asserts the one call's name only.
    "fallback_no_tags": (
        "<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n"
        "<parameter=state>\nTX\n</parameter>\n</function>",
        SAMPLE_TOOLS,
        [("get_current_weather", {"city": "Dallas", "state": "TX"})],
        None,
    ),
    # test_extract_tool_calls_type_conversion
    "type_conversion": (
        "<tool_call>\n<function=test_types>\n<parameter=int_param>\n42\n</parameter>\n"
        "<parameter=float_param>\n3.14\n</parameter>\n<parameter=bool_param>\ntrue\n"
        "</parameter>\n<parameter=str_param>\nhello world\n</parameter>\n"
        '<parameter=obj_param>\n{"key": "value"}\n</parameter>\n</function>\n</tool_call>',
        TYPES_TOOLS,
        [
            (
                "test_types",
                {
                    "int_param": 42,
                    "float_param": 3.14,
                    "bool_param": True,
                    "str_param": "hello world",
                    "obj_param": {"key": "value"},
                },
            )
        ],
        None,
    ),
    # test_extract_tool_calls_anyof_type_conversion
    "anyof_type_conversion": (
        "<tool_call>\n<function=test_anyof>\n<parameter=anyof_int>\n5\n</parameter>\n"
        "<parameter=anyof_str>\nhello\n</parameter>\n"
        '<parameter=anyof_array>\n["a", "b", "c"]\n</parameter>\n'
        '<parameter=anyof_obj>\n{"key": "value"}\n</parameter>\n'
        "<parameter=type_as_array>\n42\n</parameter>\n"
        "<parameter=multi_non_null>\nsome text\n</parameter>\n</function>\n</tool_call>",
        ANYOF_TOOLS,
        [
            (
                "test_anyof",
                {
                    "anyof_int": 5,
                    "anyof_str": "hello",
                    "anyof_array": ["a", "b", "c"],
                    "anyof_obj": {"key": "value"},
                    "type_as_array": 42,
                    "multi_non_null": "some text",
                },
            )
        ],
        None,
    ),
    # test_extract_tool_calls_missing_closing_parameter_tag: vLLM asserts the content
    # holds the prose; ours is exactly it (content is stripped when calls follow).
    "missing_closing_parameter_tag": (
        "Let me check the weather for you:\n<tool_call>\n<function=get_current_weather>\n"
        "<parameter=city>\nDallas\n<parameter=state>\nTX\n</parameter>\n"
        "<parameter=unit>\nfahrenheit\n</parameter>\n</function>\n</tool_call>",
        SAMPLE_TOOLS,
        [("get_current_weather", DALLAS)],
        "Let me check the weather for you:",
    ),
    # test_malformed_xml_no_gt_delimiter: vLLM asserts only that it does not crash and
    # every call is a call. The name runs to the next `>`, as vLLM reads it; the toolbox
    # refuses that name with the list of the tools there are.
    "malformed_xml_no_gt_delimiter": (
        "<tool_call>\n<function=get_current_weather\n<parameter=city>Dallas</parameter>\n"
        "</function>\n</tool_call>",
        SAMPLE_TOOLS,
        [("get_current_weather\n<parameter=city", {})],
        None,
    ),
    # test_none_tool_calls_filtered: vLLM asserts the weather call is there, once, with
    # its arguments; the call with no `>` is kept too (vLLM 0.32.0 keeps it as well).
    "none_tool_calls_filtered": (
        "<tool_call>\n<function=bad_func_no_gt\n</function>\n</tool_call>\n<tool_call>\n"
        "<function=get_current_weather>\n<parameter=city>Dallas</parameter>\n"
        "<parameter=state>TX</parameter>\n</function>\n</tool_call>",
        SAMPLE_TOOLS,
        [("bad_func_no_gt", {}), ("get_current_weather", {"city": "Dallas", "state": "TX"})],
        None,
    ),
    # test_anyof_parameter_not_double_encoded
    "anyof_parameter_not_double_encoded": (
        "<tool_call>\n<function=update_record>\n"
        '<parameter=data>{"key": "value", "count": 42}</parameter>\n</function>\n</tool_call>',
        RECORD_TOOLS,
        [("update_record", {"data": {"key": "value", "count": 42}})],
        None,
    ),
    # test_no_double_serialization_string_args: vLLM checks the JSON text carries no
    # escaped quotes; we hand back the value itself, so equality says the same.
    "no_double_serialization_string_args": (
        "<tool_call>\n<function=greet>\n<parameter=message>hello world</parameter>\n"
        "</function>\n</tool_call>",
        GREET_TOOLS,
        [("greet", {"message": "hello world"})],
        None,
    ),
    # test_extract_tool_calls_streaming_missing_opening_tag, read whole: a streaming test
    # upstream, but its finished message is a non-streaming case too.
    "missing_opening_tag": (
        "I'll check the weather for you.\n\n" + WEATHER_CALL.removeprefix("<tool_call>\n"),
        SAMPLE_TOOLS,
        [("get_current_weather", DALLAS)],
        "I'll check the weather for you.",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_vllm_case(case: str) -> None:
    text, tools, calls, content = CASES[case]
    parsed = parse_tool_calls(text, tools)
    assert [(c.name, c.arguments) for c in parsed.calls] == calls
    assert parsed.content == content


def test_types_are_the_json_types_vllm_gives() -> None:
    """Equality alone would take 42.0 for 42 and 1 for True."""
    _, tools, [(_, expected)], _ = CASES["type_conversion"]
    [call] = parse_tool_calls(CASES["type_conversion"][0], tools).calls
    assert {k: type(v) for k, v in call.arguments.items()} == {
        k: type(v) for k, v in expected.items()
    }
