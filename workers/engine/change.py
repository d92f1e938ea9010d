"""The change a run produced: computed once, by the harness, from the sandbox's tree.

What the agent's sandbox says about itself (its HEAD, its index, `.git/info/exclude`,
`assume-unchanged` bits, its git configuration) plays no part: the workspace's files are
read out as an archive and compared with the base commit by the worker's own git, in a
scratch repository with no configuration of anyone's. The diff this gives is the one
artifact: the verdict lays exactly its tree into a fresh sandbox, and the forge commits
exactly it (checked by tree id).
"""

from __future__ import annotations

import io
import os
import shlex
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox import Sandbox, SandboxError
from workers.engine.git import GitError, git, tree_tarball
from workers.engine.workspace import EXCLUDES

ChangeStatus = Literal["added", "modified", "deleted"]
HARNESS_DIR = "/tmp/qwenfix-harness"
"""Root's own directory in a sandbox (mode 700): the sandbox user cannot touch it."""
STARTED = f"{HARNESS_DIR}/agent-started"
"""Made when the agent is handed the sandbox: what is newer was written since."""
MAX_DIFF_BYTES = 50_000_000
_STATUS: dict[str, ChangeStatus] = {"A": "added", "M": "modified", "T": "modified", "D": "deleted"}
_CLEAN_GIT = {
    # Nobody's configuration: not the system's, not the worker user's, not the sandbox's.
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
}


class FileChange(BaseModel):
    path: str
    status: ChangeStatus
    mode: str = "100644"
    """The git mode after the change (100755 executable, 120000 a symbolic link)."""


class Change(BaseModel):
    base: str
    diff: str
    tree: str
    """The git tree of base + diff: what the verdict judges and the forge must commit."""
    files: list[FileChange] = Field(default_factory=list)
    contents: dict[str, bytes] = Field(default_factory=dict, repr=False)
    """The bytes of every added or modified file (a link's target for a symbolic link)."""
    left_out: list[str] = Field(default_factory=list)
    """Files in the workspace that the change does not carry (ignored by .gitignore)."""

    @property
    def empty(self) -> bool:
        return not self.diff.strip()

    def new(self, path: str) -> bytes | None:
        return self.contents.get(path)

    def as_tar(self, uid: int, gid: int) -> bytes:
        """The added and modified files, for laying over the base tree in a sandbox."""
        return tree_tarball(
            [(f.mode, f.path, self.contents[f.path]) for f in self.files if f.status != "deleted"],
            uid=uid,
            gid=gid,
        )


class ChangeUnreadable(Exception):
    """The workspace could not be read out of the sandbox (a failure, or sabotage)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def capture_change(
    sb: Sandbox, repo: Path, base: str, *, leave_out: list[str], workdir: str
) -> Change:
    """The workspace as it is now against `base`. `leave_out` are workspace paths the
    harness knows are not the change (what setup installed)."""
    excludes = " ".join(
        f"--exclude={shlex.quote('./' + p.strip('/'))}" for p in [".git", *leave_out]
    )
    archive = f"{HARNESS_DIR}/tree.tar"
    # Root's tar, root's environment: nothing the agent left behind runs here. Exit 1 is
    # GNU tar's "a file changed as we read it" (a background process): the archive stands.
    packed = sb.run(
        f"mkdir -p -m 700 {HARNESS_DIR} && rm -f {archive} && "
        f"tar -C {shlex.quote(workdir)} --anchored --no-wildcards {excludes} "
        f"--warning=no-file-changed -cf {archive} . ; code=$?; [ $code -le 1 ]",
        timeout=600,
        as_root=True,
        max_output_bytes=20_000,
    )
    if not packed.ok:
        raise ChangeUnreadable(f"could not read the workspace: {packed.output[-500:]}")
    try:
        tree = sb.read_file(archive)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ChangeUnreadable("could not read the workspace's archive") from exc
    with _scratch(repo) as (scratch, worktree):
        _extract(tree, worktree)
        run = _ScratchGit(scratch, worktree)
        run("read-tree", base)
        run("add", "-A", "--ignore-errors")
        diff = run(
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--full-index",
            base,
        )
        ignored = _lines(
            run("ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory")
        )
        litter = set(
            _lines(
                run(
                    "ls-files",
                    "-z",
                    "--others",
                    "--ignored",
                    "--directory",
                    f"--exclude-from={scratch / 'info' / 'exclude'}",
                )
            )
        )
    if len(diff) > MAX_DIFF_BYTES:
        raise ChangeUnreadable(f"the change is larger than {MAX_DIFF_BYTES // 1_000_000} MB")
    change = materialise(repo, base, diff.decode("utf-8", "surrogateescape"))
    change.left_out = sorted(p for p in ignored if p not in litter)[:200]
    return change


def materialise(repo: Path, base: str, diff: str) -> Change:
    """The tree, file list and contents of `diff` applied to `base`: the same for a diff
    just captured and for one read back later (an evaluation, a retried job)."""
    with _scratch(repo) as (scratch, _):
        run = _ScratchGit(scratch, None)
        run("read-tree", base)
        if diff.strip():
            try:
                run(
                    "apply",
                    "--cached",
                    "--binary",
                    "--whitespace=nowarn",
                    "-",
                    stdin=diff.encode("utf-8", "surrogateescape"),
                )
            except GitError as exc:
                raise ChangeUnreadable(
                    f"the change does not apply to {base[:12]}: {exc.stderr.strip()[-300:]}"
                ) from exc
        tree = run("write-tree").decode().strip()
        files: list[FileChange] = []
        raw = run("diff-index", "--cached", "-z", "--no-renames", base).split(b"\0")
        for meta, path in zip(raw[0::2], raw[1::2], strict=False):
            _, new_mode, _, _, status = meta.decode().split(" ")
            name = path.decode("utf-8", "surrogateescape")
            files.append(
                FileChange(
                    path=name,
                    status=_STATUS[status[0]],
                    mode=new_mode if status[0] != "D" else "100644",
                )
            )
        contents = {}
        for change in files:
            if change.status != "deleted":
                contents[change.path] = run("cat-file", "blob", f":{change.path}")
    return Change(
        base=base,
        diff=diff,
        tree=tree,
        files=sorted(files, key=lambda f: f.path),
        contents=contents,
    )


def mark_started(sb: Sandbox) -> None:
    """Note the moment the agent gets the sandbox (see `written_outside`)."""
    marked = sb.run(f"mkdir -p -m 700 {HARNESS_DIR} && touch {STARTED}", timeout=60, as_root=True)
    if not marked.ok:
        raise SandboxError(f"could not prepare the sandbox: {marked.output[-300:]}")


def written_outside(sb: Sandbox, workdir: str) -> list[str]:
    """What the sandbox user wrote outside the workspace: evidence for the verdict's
    reason (none of it reaches the fresh sandbox that judges the change)."""
    uid = sb.spec.user.split(":")[0]
    mine = f"-user {uid} -newer {STARTED} \\( -type f -o -type l \\) -print"
    found = sb.run(
        f"[ -e {STARTED} ] || exit 0; "
        f"find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path {workdir} "
        f"-o -path {HARNESS_DIR} -o -path /tmp/qwenfix \\) -prune -o {mine} 2>/dev/null "
        f"| head -200; find /tmp -xdev \\( -path {HARNESS_DIR} -o -path /tmp/qwenfix \\) "
        f"-prune -o {mine} 2>/dev/null | head -200",
        timeout=120,
        as_root=True,
        max_output_bytes=100_000,
    )
    return sorted({line for line in found.output.splitlines() if line.startswith("/")})


@contextmanager
def _scratch(repo: Path) -> Iterator[tuple[Path, Path]]:
    """A bare repository that borrows `repo`'s objects, and an empty work tree."""
    objects = git(repo, "rev-parse", "--git-path", "objects").decode().strip()
    with tempfile.TemporaryDirectory(prefix="qwenfix-change-") as tmp:
        scratch, worktree = Path(tmp) / "git", Path(tmp) / "tree"
        worktree.mkdir()
        git(Path(tmp), "init", "-q", "--bare", str(scratch), env=_CLEAN_GIT)
        (scratch / "objects" / "info" / "alternates").write_text(
            str((repo / objects).resolve()) + "\n"
        )
        (scratch / "info").mkdir(exist_ok=True)
        (scratch / "info" / "exclude").write_text("\n".join(EXCLUDES) + "\n")
        yield scratch, worktree


class _ScratchGit:
    """The worker's git on the scratch repository, with nobody's configuration."""

    def __init__(self, scratch: Path, worktree: Path | None) -> None:
        self.cwd = worktree or scratch
        self.env = {**_CLEAN_GIT, "GIT_DIR": str(scratch)}
        if worktree is not None:
            self.env["GIT_WORK_TREE"] = str(worktree)

    def __call__(self, *args: str, stdin: bytes | None = None) -> bytes:
        return git(
            self.cwd,
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.untrackedCache=false",
            "-c",
            "core.autocrlf=false",
            "-c",
            "core.symlinks=true",
            *args,
            input=stdin,
            env=self.env,
        )


def _lines(out: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def _extract(data: bytes, target: Path) -> None:
    """Unpack the workspace's archive without trusting it: nothing outside `target`, no
    devices, no owners; a member that would go through a link is left out (git could not
    hold it either)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(target, filter=_safe_member)
    except (tarfile.TarError, OSError) as exc:
        raise SandboxError(f"could not unpack the workspace: {exc}") from exc


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    if member.isdev() or member.isfifo():
        return None
    try:
        safe = tarfile.tar_filter(member, dest)
    except tarfile.FilterError:
        return None
    # typeshed wants ints and strs; None is what clears the owner.
    return safe.replace(
        uid=None,  # type: ignore[arg-type]
        gid=None,  # type: ignore[arg-type]
        uname=None,  # type: ignore[arg-type]
        gname=None,  # type: ignore[arg-type]
        mode=(safe.mode or 0) | (0o700 if safe.isdir() else 0o600),
    )
