"""Which files stay out of the model's context, and why (the report says so)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

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
LOCK_NAMES = frozenset(("package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum"))


class ContextRules(BaseModel):
    """What to leave out; `.qwenfix.yml`'s `context:` section adds to the defaults."""

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(default=262_144, ge=1)
    exclude: list[str] = Field(default_factory=list)
    """More patterns to leave out (gitignore-like: `dir/`, `*.ext`, `path/*.py`)."""
    keep: list[str] = Field(default_factory=list)
    """Patterns that override the built-in exclusions (for example `vendor/`)."""

    def matcher(self) -> NameRules:
        return NameRules(
            [p for p in DEFAULT_EXCLUDES if p not in self.keep] + self.exclude, self.max_file_bytes
        )


class NameRules:
    """The exclusion patterns, compiled once: checked against thousands of paths."""

    def __init__(self, patterns: Sequence[str], max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self._dirs = {p[:-1]: p for p in patterns if p.endswith("/")}
        self._paths = [
            (p, re.compile(fnmatch.translate(p)))
            for p in patterns
            if "/" in p and not p.endswith("/")
        ]
        names = [p for p in patterns if "/" not in p]
        self._names = (
            re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in names)) if names else None
        )
        self._name_list = names

    def match(self, path: str) -> str | None:
        """The pattern that excludes `path`, if any."""
        directories, _, name = path.rpartition("/")
        if self._dirs and directories:
            for part in directories.split("/"):
                if part in self._dirs:
                    return self._dirs[part]
        if self._names is not None and self._names.match(name):
            return next(p for p in self._name_list if fnmatch.fnmatchcase(name, p))
        for pattern, regex in self._paths:
            if regex.match(path):
                return pattern
        return None


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
