"""The agent's tools on the in-memory sandbox: the errors the model is told."""

from __future__ import annotations

import pytest

from tests.fakes.memory_sandbox import MemorySandbox
from workers.engine.agent.tools import Toolbox, ToolError
from workers.engine.llm.types import ToolCall

SOURCE = "def double(x):\n    return x + x + 1\n\n\ndef triple(x):\n    return x + x + x\n"


@pytest.fixture
def box() -> MemorySandbox:
    return MemorySandbox({"mathlib.py": SOURCE, "src/pkg/util.py": "X = 1\n"})


def use(sandbox: MemorySandbox, name: str, **arguments: object) -> str:
    toolbox = Toolbox(
        sandbox, run_tests=lambda: "no tests here", command_timeout_s=30, output_chars=4000
    )
    return toolbox.execute(ToolCall(id="c1", name=name, arguments=arguments))


def test_str_replace_with_no_match_says_so_and_leaves_the_file(box: MemorySandbox) -> None:
    with pytest.raises(ToolError) as error:
        use(box, "str_replace", path="mathlib.py", old_str="x * 2", new_str="x")
    assert str(error.value) == (
        "old_str was not found in mathlib.py; view the file and copy the text exactly"
    )
    assert box.text("mathlib.py") == SOURCE


def test_str_replace_with_two_matches_asks_for_more_context(box: MemorySandbox) -> None:
    with pytest.raises(ToolError) as error:
        use(box, "str_replace", path="mathlib.py", old_str="return x + x", new_str="return 0")
    assert str(error.value) == (
        "old_str occurs 2 times in mathlib.py; include more surrounding lines so that it is unique"
    )
    assert box.text("mathlib.py") == SOURCE


def test_str_replace_of_a_unique_match_shows_the_lines_around_it(box: MemorySandbox) -> None:
    out = use(box, "str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2")
    assert out.splitlines()[0] == "Edited mathlib.py. Lines 1-5 now read:"
    assert "     2\t    return x * 2" in out
    assert box.text("mathlib.py") == SOURCE.replace("x + x + 1", "x * 2")


def test_str_replace_of_a_missing_file(box: MemorySandbox) -> None:
    with pytest.raises(ToolError, match=r"^nope\.py does not exist$"):
        use(box, "str_replace", path="nope.py", old_str="a", new_str="b")


def test_view_of_a_missing_file_says_it_does_not_exist(box: MemorySandbox) -> None:
    with pytest.raises(ToolError, match=r"^nope\.py does not exist$"):
        use(box, "view", path="nope.py")


def test_view_of_a_range_and_of_a_directory(box: MemorySandbox) -> None:
    assert use(box, "view", path="mathlib.py", start_line=5, end_line=6) == (
        "     5\tdef triple(x):\n     6\t    return x + x + x"
    )
    assert use(box, "view", path="src") == "src\nsrc/pkg\nsrc/pkg/util.py\n"
    with pytest.raises(ToolError, match="has only 6 lines"):
        use(box, "view", path="mathlib.py", start_line=9)


def test_search_prints_file_line_text_or_no_matches(box: MemorySandbox) -> None:
    assert use(box, "search", pattern="def (double|triple)") == (
        "./mathlib.py:1:def double(x):\n./mathlib.py:5:def triple(x):\n"
    )
    assert use(box, "search", pattern="absent-text") == "No matches."


def test_bash_timeout_is_capped_and_the_exit_code_shown(box: MemorySandbox) -> None:
    out = use(box, "bash", command="cargo test", timeout=9999)
    assert out == "bash: line 1: cargo: command not found\n\n[exit code 127]"
    assert box.runs[-1].timeout == 30


def test_write_file_outside_the_repository_is_refused(box: MemorySandbox) -> None:
    with pytest.raises(ToolError, match="relative to the repository root"):
        use(box, "write_file", path="../etc/passwd", content="x")
    assert use(box, "write_file", path="new/mod.py", content="A = 1\nB = 2\n").startswith(
        "Wrote new/mod.py ("
    )
    assert box.text("new/mod.py") == "A = 1\nB = 2\n"
