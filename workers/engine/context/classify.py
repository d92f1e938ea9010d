"""Which files stay out of the model's context, and why (the report says so)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pathspec import GitIgnoreSpec
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern
from pydantic import BaseModel, ConfigDict, Field, field_validator

from workers.engine.context.sources import RepoFile
from workers.engine.secrets import secret_like_name

DEFAULT_EXCLUDES = (
    # dependencies and build output
    "node_modules/",
    "vendor/",
    "dist/",
    "bower_components/",
    ".yarn/",
    "__pycache__/",
    # minified and generated code
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.pb.go",
    "*_pb2.py",
    "*_pb2_grpc.py",
    # lock files
    "*.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "go.sum",
)
BINARY_SUFFIXES = frozenset(
    (
        "png",
        "jpg",
        "jpeg",
        "gif",
        "bmp",
        "ico",
        "icns",
        "webp",
        "tif",
        "tiff",
        "psd",
        "pdf",
        "zip",
        "gz",
        "tgz",
        "bz2",
        "xz",
        "zst",
        "7z",
        "rar",
        "tar",
        "whl",
        "egg",
        "jar",
        "war",
        "so",
        "dylib",
        "dll",
        "exe",
        "o",
        "a",
        "lib",
        "pyc",
        "pyo",
        "class",
        "wasm",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "mo",
        "mp3",
        "mp4",
        "wav",
        "ogg",
        "flac",
        "mov",
        "avi",
        "webm",
        "sqlite",
        "sqlite3",
        "db",
        "bin",
        "dat",
        "npy",
        "npz",
        "pkl",
        "pt",
        "onnx",
    )
)
# pathspec names a group in every pattern; an alternation of them may hold each name once.
_NAMED_GROUP = re.compile(r"(?<!\\)\(\?P<\w+>")
LOCK_NAMES = frozenset(("package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum"))


class ContextRules(BaseModel):
    """What to leave out; `.qwenfix.yml`'s `context:` section adds to the defaults.

    Patterns are gitignore patterns, matched as git matches them (pathspec's
    `GitIgnoreSpec`): `dir/` is a directory at any depth, a pattern with a slash before its
    end is anchored at the root (`tests/fixtures/`, `/build/`), `*` stays within one path
    component and `**` spans any number, `!` re-includes, the last matching pattern wins.
    """

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(default=262_144, ge=1)
    exclude: list[str] = Field(default_factory=list)
    """More patterns to leave out (`tests/fixtures/`, `*.snap`, `src/**/gen/*.py`)."""
    keep: list[str] = Field(default_factory=list)
    """Patterns that override the built-in exclusions (`vendor/`, `vendor/ours/`); an
    `exclude` pattern still wins over them."""

    @field_validator("exclude", "keep")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                GitIgnoreSpec.from_lines([pattern])
            except (ValueError, re.error) as exc:
                raise ValueError(f"{pattern!r} is not a gitignore pattern ({exc})") from exc
        return patterns

    def matcher(self) -> NameRules:
        # One spec in gitignore order: the built-ins, then `keep` as re-inclusions, then
        # the repository's own exclusions, so each later group overrides the one before.
        keep = [p if p.startswith("!") else f"!{p}" for p in self.keep]
        return NameRules([*DEFAULT_EXCLUDES, *keep, *self.exclude], self.max_file_bytes)


class NameRules:
    """The exclusion patterns, compiled once: checked against thousands of paths."""

    def __init__(self, patterns: Sequence[str], max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self._patterns = list(patterns)
        # Compiled line by line so that a match's index is the index into `_patterns`:
        # from_lines drops empty lines, which would shift every index after them.
        compiled = [GitIgnoreSpecPattern(p) for p in self._patterns]
        self._spec = GitIgnoreSpec(compiled)
        # pathspec tries every pattern in turn, about ten times slower than one regex;
        # most paths match nothing, so one alternation of the excluding patterns answers
        # those, and only a path it matches gets the exact, last-match-wins check.
        shapes = [
            _NAMED_GROUP.sub("(?:", c.regex.pattern)
            for c in compiled
            if c.include and c.regex is not None
        ]
        self._maybe = re.compile("|".join(f"(?:{s})" for s in shapes)) if shapes else None

    def match(self, path: str) -> str | None:
        """The pattern that excludes `path`, if any (the last one to match it)."""
        if self._maybe is None or self._maybe.match(path) is None:
            return None
        result = self._spec.check_file(path)
        if not result.include or result.index is None:
            return None
        return self._patterns[result.index]


def matches(path: str, pattern: str) -> bool:
    return NameRules([pattern], 1).match(path) is not None


def excluded_by_name(file: RepoFile, rules: NameRules) -> str | None:
    """A reason to leave the file out that needs no look at its content."""
    if file.symlink:
        return "symbolic link"
    if secret_like_name(file.path):
        return "secret-like file name"
    pattern = rules.match(file.path)
    if pattern is not None:
        name = file.path.rsplit("/", 1)[-1]
        lock = name in LOCK_NAMES or name.endswith(".lock")
        return "lock file" if lock else f"excluded by pattern {pattern}"
    suffix = file.path.rsplit(".", 1)[-1].lower() if "." in file.path else ""
    if suffix in BINARY_SUFFIXES:
        return "binary"
    if file.size > rules.max_file_bytes:
        return f"too large ({file.size} bytes)"
    return None


def excluded_by_content(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return "binary"
    head = data[:1024]
    if b"@generated" in head or b"DO NOT EDIT" in head:
        return "generated"
    return None
