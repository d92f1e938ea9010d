"""A `Sandbox` held in a dict: files in memory, commands answered from a table.

Commands are not executed. A test names the answers it needs (`handlers`, matched by
prefix); the two command shapes `Toolbox` issues itself (`view` of a directory and
`search`) are answered from the dict as find and grep would. Anything else gets bash's
"command not found", so a test never passes on a command it did not mean to allow.
"""

from __future__ import annotations

import fnmatch
import io
import posixpath
import re
import shlex
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sandbox.protocol import CommandResult, SandboxSpec

Handler = Callable[[str], CommandResult]
Answer = CommandResult | Handler

# The exact shapes Toolbox._view and Toolbox._search send (after shlex.split). Matched
# strictly: if the Toolbox changes them, these tests fail instead of answering wrongly.
_VIEW_TAIL = ["-maxdepth", "2", "-not", "-path", "*/.git*", "|", "sort", "|", "head"]
_GREP_HEAD = ["grep", "-rnIE", "--exclude-dir=.git", "-e"]


@dataclass(frozen=True)
class Ran:
    command: str
    timeout: float
    env: Mapping[str, str] | None
    as_root: bool
    workdir: str


class MemorySandbox:
    def __init__(
        self,
        files: Mapping[str, str | bytes] | None = None,
        handlers: Mapping[str, Answer] | None = None,
        *,
        spec: SandboxSpec | None = None,
    ) -> None:
        self.spec = spec or SandboxSpec(image="memory")
        self.network = self.spec.network
        self.handlers = dict(handlers or {})
        self.runs: list[Ran] = []
        self.files: dict[str, bytes] = {}
        """Absolute path -> content."""
        self.dirs: set[str] = {self.spec.workdir}
        """Directories that exist without files in them (from a tar)."""
        for path, content in (files or {}).items():
            self.write_file(path, content.encode() if isinstance(content, str) else content)

    @property
    def commands(self) -> list[str]:
        return [ran.command for ran in self.runs]

    def text(self, path: str) -> str:
        return self.read_file(path).decode()

    # -- the Sandbox protocol ------------------------------------------------------

    def run(
        self,
        command: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        as_root: bool = False,
        workdir: str | None = None,
        max_output_bytes: int = 1_000_000,
    ) -> CommandResult:
        cwd = workdir or self.spec.workdir
        self.runs.append(Ran(command, timeout, env, as_root, cwd))
        for prefix, answer in self.handlers.items():
            if command.startswith(prefix):
                result = answer(command) if callable(answer) else answer
                return result.model_copy(update={"command": command})
        builtin = self._builtin(command, cwd)
        if builtin is not None:
            return builtin
        word = command.split(maxsplit=1)[0] if command.strip() else command
        return CommandResult(
            command=command, exit_code=127, output=f"bash: line 1: {word}: command not found\n"
        )

    def read_file(self, path: str) -> bytes:
        full = self._abs(path)
        if full in self.files:
            return self.files[full]
        if self._is_dir(full):
            raise IsADirectoryError(path)
        raise FileNotFoundError(path)

    def write_file(self, path: str, data: bytes) -> None:
        full = self._abs(path)
        if self._is_dir(full):
            raise IsADirectoryError(path)
        self.files[full] = bytes(data)

    def upload_tar(self, tar_bytes: bytes, dest: str) -> None:
        root = self._abs(dest)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            for member in tar.getmembers():
                full = posixpath.normpath(posixpath.join(root, member.name))
                if member.isdir():
                    self.dirs.add(full)
                elif member.isfile():
                    handle = tar.extractfile(member)
                    self.files[full] = handle.read() if handle else b""
                else:  # links and devices: not needed yet, and never silently dropped
                    raise NotImplementedError(f"MemorySandbox cannot unpack {member.name!r}")

    def disable_network(self) -> None:
        self.network = False

    # -- the filesystem ------------------------------------------------------------

    def _abs(self, path: str, cwd: str | None = None) -> str:
        return posixpath.normpath(posixpath.join(cwd or self.spec.workdir, path))

    def _is_dir(self, full: str) -> bool:
        inside = full.rstrip("/") + "/"
        return full in self.dirs or any(p.startswith(inside) for p in [*self.files, *self.dirs])

    def _below(self, full: str) -> list[str]:
        """Every file and directory under `full`, relative to it, sorted."""
        inside = full.rstrip("/") + "/"
        found: set[str] = set()
        for path in [*self.files, *self.dirs]:
            if path.startswith(inside):
                parts = path[len(inside) :].split("/")
                found.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        return sorted(found)

    # -- what Toolbox runs itself -----------------------------------------------------

    def _builtin(self, command: str, cwd: str) -> CommandResult | None:
        words = shlex.split(command)
        if (
            len(words) == 16
            and words[:2] == ["test", "-d"]
            and words[3:5] == ["&&", "find"]
            and words[2] == words[5]
            and words[6:15] == _VIEW_TAIL
        ):
            return self._find(command, words[2], cwd, limit=int(words[15].lstrip("-")))
        if (
            len(words) == 10
            and words[:4] == _GREP_HEAD
            and words[5] == "--"
            and words[7:9] == ["|", "head"]
        ):
            return self._grep(command, words[4], words[6], cwd, limit=int(words[9].lstrip("-")))
        return None

    def _find(self, command: str, path: str, cwd: str, *, limit: int) -> CommandResult:
        """`test -d P && find P -maxdepth 2 -not -path '*/.git*' | sort | head -N`."""
        full = self._abs(path, cwd)
        if not self._is_dir(full):
            return CommandResult(command=command, exit_code=1, output="")
        shown = [path] + [
            f"{path.rstrip('/')}/{rel}" for rel in self._below(full) if rel.count("/") < 2
        ]
        lines = sorted(p for p in shown if not fnmatch.fnmatchcase(p, "*/.git*"))[:limit]
        return CommandResult(command=command, exit_code=0, output="".join(f"{p}\n" for p in lines))

    def _grep(
        self, command: str, pattern: str, path: str, cwd: str, *, limit: int
    ) -> CommandResult:
        """`grep -rnIE --exclude-dir=.git -e PATTERN -- PATH | head -N`; the pipeline's
        status is head's, so always 0, as in bash without pipefail."""
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            return CommandResult(command=command, exit_code=0, output=f"grep: {exc}\n")
        full = self._abs(path, cwd)
        named: list[tuple[str | None, str]]
        if full in self.files:
            named = [(None, full)]  # one file operand: grep prints no file name
        elif self._is_dir(full):
            named = [
                (f"{path.rstrip('/')}/{rel}", f"{full.rstrip('/')}/{rel}")
                for rel in self._below(full)
                if ".git" not in rel.split("/") and f"{full.rstrip('/')}/{rel}" in self.files
            ]
        else:
            return CommandResult(
                command=command, exit_code=0, output=f"grep: {path}: No such file or directory\n"
            )
        out: list[str] = []
        for name, file in named:
            data = self.files[file]
            if b"\0" in data:  # -I: binary files are skipped
                continue
            lines = data.decode(errors="replace").split("\n")
            if lines[-1] == "":  # the final newline ends a line; it starts none
                lines.pop()
            for number, line in enumerate(lines, 1):
                if regex.search(line):
                    out.append(f"{name}:{number}:{line}" if name else f"{number}:{line}")
        return CommandResult(
            command=command, exit_code=0, output="".join(f"{line}\n" for line in out[:limit])
        )
