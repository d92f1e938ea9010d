"""The agent's tools. Each returns an observation string; a failed command is an
observation too. Bad arguments raise ToolError, whose message goes back to the model."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from sandbox import CommandResult, Sandbox
from workers.engine.llm.types import ToolCall, ToolSchema

VIEW_MAX_LINES = 400
SEARCH_MAX_LINES = 200


class ToolError(Exception):
    """The call cannot be carried out as asked; the message tells the model why."""


class SubmitRequested(Exception):
    """A signal to the loop that the model has finished, carrying what it handed over."""

    def __init__(self, summary: str, title: str | None, payload: BaseModel | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.title = title
        self.payload = payload


class BashArgs(BaseModel):
    """Run a shell command (bash) in the repository. No network. Output is truncated."""

    command: str = Field(description="The command to run.")
    timeout: int | None = Field(default=None, ge=1, description="Seconds before it is killed.")


class ViewArgs(BaseModel):
    """Show a file with line numbers (optionally a range), or list a directory."""

    path: str = Field(description="Path relative to the repository root.")
    start_line: int | None = Field(default=None, ge=1, description="First line (1-based).")
    end_line: int | None = Field(default=None, ge=1, description="Last line, inclusive.")


class StrReplaceArgs(BaseModel):
    """Replace one exact, unique occurrence of old_str in a file with new_str."""

    path: str = Field(description="Path relative to the repository root.")
    old_str: str = Field(description="Exact text to replace; must occur exactly once.")
    new_str: str = Field(description="Replacement text.")


class WriteFileArgs(BaseModel):
    """Create a file, or overwrite it entirely, with the given content."""

    path: str = Field(description="Path relative to the repository root.")
    content: str = Field(description="The whole new content of the file.")


class SearchArgs(BaseModel):
    """Search the repository for a regular expression (grep -E); prints file:line:text."""

    pattern: str = Field(description="Extended regular expression.")
    path: str = Field(default=".", description="Directory or file to search in.")


class RunTestsArgs(BaseModel):
    """Run the repository's test command and show the result."""


class SubmitArgs(BaseModel):
    """Finish: the fix is done and the tests pass. qwenfix then verifies by running the tests."""

    summary: str = Field(description="What was wrong and what you changed, for the pull request.")
    title: str | None = Field(default=None, description="A short pull-request title.")
    declined: list[str] = Field(
        default_factory=list,
        description="Requests you deliberately did not act on, each with the reason.",
    )


class ReviewCommentArgs(BaseModel):
    path: str = Field(description="File path as in the diff.")
    line: int = Field(ge=1, description="Line number on the chosen side of the diff.")
    side: Literal["RIGHT", "LEFT"] = Field(
        default="RIGHT",
        description="RIGHT: the new file (added or unchanged lines); "
        "LEFT: the old file (removed lines).",
    )
    body: str = Field(
        description="The comment. A ```suggestion block proposes new text for that line."
    )


class SubmitReviewArgs(BaseModel):
    """Finish: post the review. Comments must be on lines that are part of the diff."""

    summary: str = Field(description="The review's overall verdict and main points.")
    comments: list[ReviewCommentArgs] = Field(
        default_factory=list, description="Inline comments on lines of the diff."
    )


FIX_TOOLS: dict[str, type[BaseModel]] = {
    "bash": BashArgs,
    "view": ViewArgs,
    "str_replace": StrReplaceArgs,
    "write_file": WriteFileArgs,
    "search": SearchArgs,
    "run_tests": RunTestsArgs,
    "submit": SubmitArgs,
}
REVIEW_TOOLS: dict[str, type[BaseModel]] = {
    "bash": BashArgs,
    "view": ViewArgs,
    "search": SearchArgs,
    "run_tests": RunTestsArgs,
    "submit_review": SubmitReviewArgs,
}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Nested models without `$ref`s: one self-contained schema per tool."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(dict(defs[node["$ref"].rsplit("/", 1)[-1]]))
            return {k: resolve(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return dict(resolve(schema))


def tool_schemas(tools: dict[str, type[BaseModel]] | None = None) -> list[ToolSchema]:
    schemas = []
    for name, model in (tools or FIX_TOOLS).items():
        params = _inline_refs(model.model_json_schema())
        params.pop("description", None)
        schemas.append(
            {
                "type": "function",
                "function": {"name": name, "description": model.__doc__, "parameters": params},
            }
        )
    return schemas


def clip(text: str, limit: int) -> str:
    """Head and tail of long text, with a note saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters omitted ...]\n{text[-half:]}"


def format_command(result: CommandResult, limit: int) -> str:
    out = clip(result.output, limit)
    if result.truncated:
        out += f"\n[output was {result.output_bytes} bytes; only its head and tail were kept]"
    if result.timed_out:
        return f"{out}\n[command timed out and was killed after {result.duration_s:.0f}s]"
    if result.exit_code is None:  # stopped for the disk: its output ends saying so
        return out
    return f"{out}\n[exit code {result.exit_code}]"


class Toolbox:
    def __init__(
        self,
        sandbox: Sandbox,
        *,
        run_tests: Callable[[], str],
        command_timeout_s: float,
        output_chars: int,
        tools: dict[str, type[BaseModel]] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self._tests_callback = run_tests
        self.command_timeout_s = command_timeout_s
        self.output_chars = output_chars
        self.tools = tools or FIX_TOOLS
        self.schemas = tool_schemas(self.tools)

    def execute(self, call: ToolCall) -> str:
        """The observation for one call. Raises SubmitRequested for a valid submit."""
        if call.error:
            raise ToolError(f"could not decode the call to {call.name!r}: {call.error}")
        model = self.tools.get(call.name)
        if model is None:
            raise ToolError(f"unknown tool {call.name!r}; available tools: {', '.join(self.tools)}")
        try:
            args = model.model_validate(call.arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {call.name}: {problems}") from exc
        handler: Callable[[Any], str] = getattr(self, f"_{call.name}")
        return handler(args)

    def _bash(self, args: BashArgs) -> str:
        timeout = min(args.timeout or self.command_timeout_s, self.command_timeout_s)
        result = self.sandbox.run(args.command, timeout=timeout)
        return format_command(result, self.output_chars)

    def _read_text(self, path: str) -> str:
        try:
            data = self.sandbox.read_file(path)
        except FileNotFoundError as exc:
            raise ToolError(f"{path} does not exist") from exc
        except IsADirectoryError as exc:
            raise ToolError(f"{path} is a directory") from exc
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} is a binary file")
        return data.decode("utf-8", errors="replace")

    def _view(self, args: ViewArgs) -> str:
        listing = self.sandbox.run(
            f"test -d {shlex.quote(args.path)} && find {shlex.quote(args.path)} -maxdepth 2 "
            "-not -path '*/.git*' | sort | head -500",
            timeout=30,
        )
        if listing.ok:
            return listing.output
        lines = self._read_text(args.path).splitlines()
        start = args.start_line or 1
        end = args.end_line or min(len(lines), start + VIEW_MAX_LINES - 1)
        if start > max(len(lines), 1):
            raise ToolError(f"{args.path} has only {len(lines)} lines")
        shown = [f"{n:6}\t{lines[n - 1]}" for n in range(start, min(end, len(lines)) + 1)]
        note = ""
        if end < len(lines):
            note = f"\n[lines {end + 1}-{len(lines)} not shown; use start_line/end_line]"
        return clip("\n".join(shown), self.output_chars) + note

    def _str_replace(self, args: StrReplaceArgs) -> str:
        text = self._read_text(args.path)
        count = text.count(args.old_str) if args.old_str else 0
        if count == 0:
            raise ToolError(
                f"old_str was not found in {args.path}; view the file and copy the text exactly"
            )
        if count > 1:
            raise ToolError(
                f"old_str occurs {count} times in {args.path}; include more surrounding "
                "lines so that it is unique"
            )
        new_text = text.replace(args.old_str, args.new_str, 1)
        self.sandbox.write_file(args.path, new_text.encode())
        first = new_text[: new_text.index(args.new_str)].count("\n") + 1 if args.new_str else 1
        lines = new_text.splitlines()
        lo, hi = max(1, first - 3), min(len(lines), first + args.new_str.count("\n") + 3)
        snippet = "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(lo, hi + 1))
        return f"Edited {args.path}. Lines {lo}-{hi} now read:\n{snippet}"

    def _write_file(self, args: WriteFileArgs) -> str:
        if posixpath.isabs(args.path) or ".." in args.path.split("/"):
            raise ToolError("path must be relative to the repository root, without '..'")
        self.sandbox.write_file(args.path, args.content.encode())
        return f"Wrote {args.path} ({args.content.count(chr(10)) + 1} lines)."

    def _search(self, args: SearchArgs) -> str:
        result = self.sandbox.run(
            f"grep -rnIE --exclude-dir=.git -e {shlex.quote(args.pattern)} "
            f"-- {shlex.quote(args.path)} | head -{SEARCH_MAX_LINES}",
            timeout=60,
        )
        if not result.output.strip():
            return "No matches."
        return clip(result.output, self.output_chars)

    def _run_tests(self, args: RunTestsArgs) -> str:
        return self._tests_callback()

    def _submit(self, args: SubmitArgs) -> str:
        raise SubmitRequested(args.summary, args.title, payload=args)

    def _submit_review(self, args: SubmitReviewArgs) -> str:
        raise SubmitRequested(args.summary, None, payload=args)
