"""The agent's tools against a real sandbox."""

from __future__ import annotations

import pytest

from sandbox.docker_backend import DockerBackend
from sandbox.protocol import SandboxSpec, session
from tests.conftest import SANDBOX_IMAGE
from workers.engine.agent.tools import SubmitRequested, Toolbox, ToolError, clip
from workers.engine.llm.types import ToolCall


def run(box: Toolbox, name: str, **arguments: object) -> str:
    return box.execute(ToolCall(id="c", name=name, arguments=arguments))


def test_tools_in_a_sandbox(backend: DockerBackend) -> None:
    with session(backend, SandboxSpec(image=SANDBOX_IMAGE)) as sb:
        box = Toolbox(sb, run_tests=lambda: "tests ran", command_timeout_s=10, output_chars=2000)
        lines = "".join(f"line {n}\n" for n in range(1, 1001))
        assert run(box, "write_file", path="src/big.txt", content=lines).startswith("Wrote")
        view = run(box, "view", path="src/big.txt", start_line=10, end_line=12)
        assert view.splitlines() == [
            "    10\tline 10",
            "    11\tline 11",
            "    12\tline 12",
            "[lines 13-1000 not shown; use start_line/end_line]",
        ]
        assert "src/big.txt" in run(box, "view", path="src")
        with pytest.raises(ToolError, match="occurs 112 times"):
            run(box, "str_replace", path="src/big.txt", old_str="line 1", new_str="x")
        edited = run(
            box,
            "str_replace",
            path="src/big.txt",
            old_str="line 500\n",
            new_str="LINE FIVE HUNDRED\n",
        )
        assert "LINE FIVE HUNDRED" in edited and "499" in edited
        assert run(box, "search", pattern="FIVE H[U]NDRED").startswith("./src/big.txt:500:")
        assert run(box, "search", pattern="absent-text") == "No matches."
        with pytest.raises(ToolError, match="does not exist"):
            run(box, "view", path="nope.py")
        with pytest.raises(ToolError, match="relative"):
            run(box, "write_file", path="../etc/passwd", content="x")
        out = run(box, "bash", command="seq 1 100000")
        assert "characters omitted" in out and out.endswith("[exit code 0]")
        assert run(box, "run_tests") == "tests ran"
        with pytest.raises(SubmitRequested) as info:
            run(box, "submit", summary="done", title="t")
        assert (info.value.summary, info.value.title) == ("done", "t")


def test_clip_keeps_head_and_tail() -> None:
    text = "a" * 50 + "b" * 50
    clipped = clip(text, 20)
    assert clipped.startswith("a" * 10) and clipped.endswith("b" * 10)
    assert "80 characters omitted" in clipped
    assert clip("short", 20) == "short"
