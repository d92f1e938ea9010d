from __future__ import annotations

from typing import Any

from workers.engine.llm.qwen3coder import parse_tool_calls, render_tool_calls

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "edit",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "line": {"type": "integer"},
                    "ratio": {"type": "number"},
                    "force": {"type": "boolean"},
                    "options": {"type": "object"},
                    "items": {"type": "array"},
                    "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "submit",
            "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}},
        },
    },
]


def test_content_before_the_first_call_and_typed_values() -> None:
    text = (
        "I will edit it.\n<tool_call>\n<function=edit>\n<parameter=path>\nsrc/a.py\n"
        "</parameter>\n<parameter=line>\n12\n</parameter>\n<parameter=ratio>\n0.5\n"
        "</parameter>\n<parameter=force>\nTrue\n</parameter>\n<parameter=options>\n"
        '{"a": [1, 2]}\n</parameter>\n<parameter=items>\n["x"]\n</parameter>\n'
        "<parameter=maybe>\nnull\n</parameter>\n</function>\n</tool_call>"
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.content == "I will edit it."
    assert len(parsed.calls) == 1
    assert parsed.calls[0].name == "edit"
    assert parsed.calls[0].arguments == {
        "path": "src/a.py",
        "line": 12,
        "ratio": 0.5,
        "force": True,
        "options": {"a": [1, 2]},
        "items": ["x"],
        "maybe": None,
    }


def test_string_values_keep_inner_whitespace_and_only_one_newline_is_stripped() -> None:
    value = "\n    indented\n\n"
    text = (
        f"<tool_call>\n<function=submit>\n<parameter=summary>\n{value}\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.content is None
    assert parsed.calls[0].arguments["summary"] == value


def test_several_calls_and_missing_closing_tags() -> None:
    text = (
        "<tool_call>\n<function=edit>\n<parameter=path>\na.py\n<parameter=line>\n3\n"
        "</function>\n</tool_call>\n<tool_call>\n<function=submit>\n<parameter=summary>\n"
        "done"  # cut off: no </parameter>, </function> or </tool_call>
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert [c.name for c in parsed.calls] == ["edit", "submit"]
    assert parsed.calls[0].arguments == {"path": "a.py", "line": 3}
    assert parsed.calls[1].arguments == {"summary": "done"}


def test_a_value_may_hold_a_function_tag() -> None:
    """A file about tool calls: its text is one value, not the start of another call."""
    about = "Qwen writes <function=NAME> after <tool_call>."
    text = render_tool_calls([("submit", {"summary": about}), ("edit", {"path": "b.py"})])
    parsed = parse_tool_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("submit", {"summary": about}),
        ("edit", {"path": "b.py"}),
    ]


def test_unknown_functions_are_kept_for_the_toolbox_and_unknown_parameters_stay_strings() -> None:
    text = (
        "<tool_call>\n<function=rm_rf>\n<parameter=path>\n/\n</parameter>\n</function>\n"
        "</tool_call>\n<tool_call>\n<function=edit>\n<parameter=colour>\n7\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("rm_rf", {"path": "/"}),
        ("edit", {"colour": "7"}),
    ]


def test_objects_and_arrays_may_be_python_literals() -> None:
    text = (
        "<tool_call>\n<function=edit>\n<parameter=options>\n{'a': 1, 'b': None}\n"
        "</parameter>\n<parameter=items>\n[True, 'x']\n</parameter>\n"
        "<parameter=maybe>\nNone\n</parameter>\n</function>\n</tool_call>"
    )
    assert parse_tool_calls(text, TOOLS).calls[0].arguments == {
        "options": {"a": 1, "b": None},
        "items": [True, "x"],
        "maybe": None,
    }


def test_a_value_may_hold_a_parameter_tag_of_another_function() -> None:
    """Code that writes tool-call templates: `<parameter=summary>` is not edit's."""
    template = "<parameter=summary>\nhello\n"
    text = (
        f"<tool_call>\n<function=edit>\n<parameter=path>\n{template}</parameter>\n"
        "<parameter=line>\n3\n</parameter>\n</function>\n</tool_call>"
    )
    assert parse_tool_calls(text, TOOLS).calls[0].arguments == {
        "path": template.rstrip("\n"),
        "line": 3,
    }


def test_unconvertible_values_are_left_as_text_for_validation() -> None:
    text = (
        "<tool_call>\n<function=edit>\n<parameter=line>\ntwelve\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    assert parse_tool_calls(text, TOOLS).calls[0].arguments == {"line": "twelve"}


def test_plain_text_has_no_calls() -> None:
    parsed = parse_tool_calls("  just thinking out loud  ", TOOLS)
    assert parsed.content == "just thinking out loud"
    assert parsed.calls == []
    assert parse_tool_calls("", TOOLS).content is None


def test_render_round_trips() -> None:
    calls = [
        ("edit", {"path": "a b.py", "line": 3, "force": False, "options": {"k": "v"}}),
        ("submit", {"summary": "multi\nline\n"}),
    ]
    parsed = parse_tool_calls(render_tool_calls(calls), TOOLS)
    assert [(c.name, c.arguments) for c in parsed.calls] == calls
