"""The prompt qwenfix counts is the prompt the chat template makes: `render_prompt` against a
Jinja render of the Qwen3-Coder template the vLLM suite serves, with Hugging Face's `tojson`
(no ASCII escapes) and arguments decoded as vLLM decodes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.fakes.memory_sandbox import MemorySandbox
from workers.engine.agent.tools import FIX_TOOLS, Toolbox
from workers.engine.llm.prompt_format import PromptCounter, render_prompt

TEMPLATE = Path(__file__).parents[1] / "vllm" / "chat_template.jinja"


def jinja_render(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    env.filters["items"] = lambda m: list(m.items())
    decoded = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {
                    **c,
                    "function": {
                        **c["function"],
                        "arguments": json.loads(c["function"]["arguments"]),
                    },
                }
                for c in message["tool_calls"]
            ]
        decoded.append(message)
    template = env.from_string(TEMPLATE.read_text())
    return template.render(messages=decoded, tools=tools, add_generation_prompt=True)


def schemas() -> list[dict[str, Any]]:
    toolbox = Toolbox(MemorySandbox({}), run_tests=lambda: "", command_timeout_s=1, output_chars=10)
    return list(toolbox.schemas)


def assistant(content: str | None, **arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps(arguments)},
            }
        ],
    }


CONVERSATIONS = {
    "system and user": [
        {"role": "system", "content": "You fix bugs."},
        {"role": "user", "content": "Fix it. Ünïcode — and <tags>."},
    ],
    "no system prompt": [{"role": "user", "content": "hello"}],
    "tool calls and results": [
        {"role": "system", "content": "You fix bugs."},
        {"role": "user", "content": "Fix it."},
        assistant("Let me look.", command="ls -la"),
        {"role": "tool", "tool_call_id": "call_1", "content": "a.py\nb.py"},
        assistant(None, command="cat a.py", limits={"lines": [1, 2]}, quiet=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "print('ü')"},
        {"role": "user", "content": "Your reply did not call a tool."},
    ],
    "two results in a row": [
        {"role": "user", "content": "go"},
        assistant("", command="true"),
        {"role": "tool", "tool_call_id": "a", "content": "one"},
        {"role": "tool", "tool_call_id": "b", "content": "two"},
    ],
}


@pytest.mark.parametrize("name", list(CONVERSATIONS))
@pytest.mark.parametrize("with_tools", [True, False])
def test_render_prompt_is_the_chat_templates_text(name: str, with_tools: bool) -> None:
    tools = schemas() if with_tools else []
    messages = CONVERSATIONS[name]
    assert render_prompt(messages, tools) == jinja_render(messages, tools)


def test_the_count_is_the_tokenizers_count_of_the_whole_prompt() -> None:
    counter = PromptCounter()
    messages = CONVERSATIONS["tool calls and results"]
    tools = schemas()
    whole = counter.tokens.count(render_prompt(messages, tools))
    assert counter.count(messages, tools) == whole
    # Counted again with one more message: only the new piece is tokenized.
    grown = [*messages, {"role": "tool", "tool_call_id": "x", "content": "more"}]
    assert counter.count(grown, tools) == counter.tokens.count(render_prompt(grown, tools))


def test_fix_tools_are_all_offered() -> None:
    names = {s["function"]["name"] for s in schemas()}
    assert set(FIX_TOOLS) <= names
