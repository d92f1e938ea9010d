"""Property-based tests (hypothesis): untrusted input never crashes the parser, the push
checks, the comment scanner, the context packer or the receiver, and every rejection says
why."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.receiver.commands import find_command, visible_text
from bot.receiver.signature import sign
from workers.engine.agent.tools import FIX_TOOLS, tool_schemas
from workers.engine.context.classify import ContextRules
from workers.engine.context.pack import BudgetTooSmall, Packer
from workers.engine.context.safety import untrusted, visible_only
from workers.engine.context.sources import RepoFile, blob_id
from workers.engine.context.tokens import CountCache, TokenCounter
from workers.engine.llm.qwen3coder import parse_tool_calls, render_tool_calls
from workers.jobs.push_checks import blocked

SCHEMAS: Any = tool_schemas(FIX_TOOLS)
COUNTER = TokenCounter()  # loads the tokenizer on first use
NAMES = st.sampled_from(sorted(FIX_TOOLS))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
TAGGY = st.lists(
    st.sampled_from(
        [
            "<tool_call>",
            "</tool_call>",
            "<function=",
            "view>",
            "<parameter=",
            "path>",
            "</parameter>",
            "</function>",
            "\n",
            "x",
            "=",
            ">",
            "<",
            "{",
            "}",
            '"',
            "submit",
        ]
    ),
    max_size=40,
).map("".join)


@given(st.one_of(TEXT, TAGGY))
@settings(max_examples=300, deadline=None)
def test_the_parser_takes_any_text(text: str) -> None:
    parsed = parse_tool_calls(text, SCHEMAS)
    # Unknown functions are kept (the toolbox refuses them by name): each call is one the
    # text named, and known ones get the schema's parameters only as the text gave them.
    assert all(call.name == call.name.strip() and call.name in text for call in parsed.calls)


@given(
    NAMES,
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        # The format's own ambiguity (vLLM's parser shares it): a
        # value cannot hold the tags that end a value.
        st.text(max_size=80).filter(
            lambda t: (
                not any(
                    tag in t
                    for tag in ("</parameter>", "<parameter=", "</function>", "</tool_call>")
                )
            )
        ),
        max_size=3,
    ),
    TEXT.filter(lambda t: "<tool_call>" not in t and "<function=" not in t),
)
@settings(max_examples=200, deadline=None)
def test_what_qwen_writes_is_read_back(name: str, arguments: dict[str, str], prose: str) -> None:
    text = f"{prose}\n{render_tool_calls([(name, arguments)])}"
    parsed = parse_tool_calls(text, SCHEMAS)
    [call] = parsed.calls
    assert call.name == name
    assert set(call.arguments) == set(arguments)


@given(
    st.one_of(
        TEXT,
        st.lists(
            st.sampled_from(
                [
                    "diff --git a/x b/x",
                    "--- a/x",
                    "+++ b/x",
                    "@@ -1 +1 @@",
                    "+aws_secret_access_key=AKIA",
                    "-old",
                    "+new",
                    "+++ b/.github/workflows/ci.yml",
                    "Binary files differ",
                    "\\ No newline",
                ]
            ),
            max_size=30,
        ).map("\n".join),
    )
)
@settings(max_examples=300, deadline=None)
def test_push_checks_take_any_diff(diff: str) -> None:
    problem = blocked(diff, max_lines=50, allow_workflows=False)
    assert problem is None or (isinstance(problem, str) and problem)


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_comment_scanning_and_cleaning_take_any_text(text: str) -> None:
    visible_text(text)
    find_command(text, "qwenfix")
    cleaned = visible_only(text)
    assert "<!--" not in cleaned and "\u202e" not in cleaned
    assert "<|im_start|>" not in untrusted(text + "<|im_start|>")


@given(
    event=st.sampled_from(["issue_comment", "issues", "push", "ping", "nonsense", ""]),
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=3)
                ),
                max_leaves=10,
            ),
        ),
    ),
    signed=st.booleans(),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_receiver_never_answers_5xx_to_bad_input(
    receiver_client: TestClient, event: str, body: bytes, signed: bool
) -> None:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "fuzz"}
    if signed:
        headers["X-Hub-Signature-256"] = sign("fuzz-secret", body)
    response = receiver_client.post("/webhook", content=body, headers=headers)
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 202, 400, 401)
    answer = response.json()
    assert (
        answer.get("error")
        or answer.get("reason")
        or answer.get("status") in ("queued", "duplicate", "recorded")
    )


class MemoryFiles:
    """A repository as a dict, for the packer (a FileSource)."""

    def __init__(self, contents: dict[str, bytes]) -> None:
        self.contents = contents
        self.files = [
            RepoFile(path=p, blob=blob_id(d), size=len(d)) for p, d in sorted(contents.items())
        ]

    def read(self, file: RepoFile) -> bytes:
        return self.contents[file.path]

    def head(self, file: RepoFile, size: int) -> bytes:
        return self.contents[file.path][:size]

    def prefetch(self, files: list[RepoFile]) -> None:
        return None


FAKE_SECRET = "ghp_" + "Zq9" * 12
NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=12,
)
PATHS = (
    st.lists(NAME, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda p: all(part not in (".", "..") for part in p.split("/")))
)
HOSTILE = st.lists(
    st.sampled_from(
        [
            "<|im_start|>system\n",
            "<|im_end|>",
            "</file>",
            '<file path="x">',
            "<tool_call>",
            "<function=bash>",
            "<parameter=command>",
            "</tool_call>",
            "def f():\n    return 1\n",
            FAKE_SECRET,
            "\x00",
            "\ufeff",
            "\u202e",
            "x" * 300,
            "\n",
            " ",
            "é",
            "🙂",
            ">",
            "<",
        ]
    ),
    max_size=30,
).map("".join)
LARGE = st.tuples(st.integers(min_value=20, max_value=400), HOSTILE).map(
    lambda n_extra: (
        "".join(f"def step_{i}(x):\n    return x + {i}\n" for i in range(n_extra[0])) + n_extra[1]
    ).encode()
)  # big enough to be ranked, outlined or named
CONTENT = st.one_of(HOSTILE.map(str.encode), st.binary(max_size=400), LARGE)


@given(
    st.dictionaries(PATHS, CONTENT, min_size=1, max_size=8),
    TEXT,
    st.integers(min_value=50, max_value=6000),
)
@example(files={"0": b"x" * 40 + FAKE_SECRET.encode()}, task="", budget=161)  # found once
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_packer_takes_any_repository(files: dict[str, bytes], task: str, budget: int) -> None:
    """Whatever the files, names, task and budget: a pack within the budget whose count is
    exact, every file accounted for, nothing that forges chat structure, no credential;
    or BudgetTooSmall naming the budget needed."""
    cache = CountCache(None)
    try:
        result = Packer(
            MemoryFiles(files), rules=ContextRules(), cache=cache, counter=COUNTER
        ).pack(task=task, budget=budget)
    except BudgetTooSmall as refused:
        assert "give at least that" in str(refused)
        return
    finally:
        cache.close()
    assert result.report.tokens <= budget
    assert COUNTER.count(result.text) == result.report.tokens
    assert sorted(f.path for f in result.report.files) == sorted(files)
    assert "<|im_start|>" not in result.text and "<tool_call>" not in result.text
    assert parse_tool_calls(result.text, SCHEMAS).calls == []
    assert FAKE_SECRET not in result.text
