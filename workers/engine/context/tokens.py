"""Exact Qwen3 token counts, cached by content.

The tokenizer is the served model's `tokenizer.json` when QWENFIX_TOKENIZER_PATH names
it (or its model directory), else Qwen3's own, shipped with qwenfix gzip-compressed in
`qwen3_tokenizer/` and checked against its SHA-256 before use (NOTICE there says where it
came from). Nothing is downloaded. It is loaded only when something has to be counted: a
warm pack never loads it.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from workers.settings import WorkerSettings

VENDORED = "qwen3_tokenizer/tokenizer.json.gz"
"""Beside this module: the Qwen3 models' tokenizer.json, compressed (see its NOTICE)."""
VENDORED_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
"""Of the uncompressed file (11,422,654 bytes), as Qwen publishes it."""


class TokenizerMissing(Exception):
    pass


class TokenizerMismatch(TokenizerMissing):
    """The shipped tokenizer is not the file it claims to be: counts would be wrong."""


def vendored_tokenizer_json() -> bytes:
    """Qwen3's tokenizer.json from the copy shipped with qwenfix, checked."""
    try:
        packed = resources.files("workers.engine.context").joinpath(VENDORED).read_bytes()
    except FileNotFoundError as exc:
        raise TokenizerMissing(
            f"{VENDORED} is missing from the installed qwenfix (workers/engine/context/); "
            "reinstall it, or set QWENFIX_TOKENIZER_PATH to the model's tokenizer.json"
        ) from exc
    return unpack_checked(packed)


def unpack_checked(packed: bytes) -> bytes:
    """The gzip-compressed tokenizer.json, uncompressed, if it is Qwen3's to the byte."""
    try:
        data = gzip.decompress(packed)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise TokenizerMismatch(f"{VENDORED} is not a readable gzip file: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != VENDORED_SHA256:
        raise TokenizerMismatch(
            f"{VENDORED} has SHA-256 {digest} once uncompressed, not Qwen3's "
            f"{VENDORED_SHA256}: the file was changed or damaged, and its counts would not "
            "be the model's; restore it from the qwenfix release"
        )
    return data


def configured_tokenizer_file(path: Path) -> Path:
    """`path` itself, or the `tokenizer.json` in the model directory it names."""
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise TokenizerMissing(
            f"QWENFIX_TOKENIZER_PATH names {path}, which is neither a tokenizer.json nor a "
            "directory holding one"
        )
    return file


class TokenCounter:
    """Counts tokens; `count_many` batches the work across cores.

    `path` is a tokenizer.json or a model directory; None: QWENFIX_TOKENIZER_PATH, read
    when first needed, and the shipped Qwen3 tokenizer when that is unset.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    @cached_property
    def source(self) -> Path | None:
        """The tokenizer.json in use; None for the shipped copy."""
        path = self._path if self._path is not None else WorkerSettings().tokenizer_path
        return configured_tokenizer_file(path) if path is not None else None

    @cached_property
    def _json(self) -> bytes:
        return vendored_tokenizer_json() if self.source is None else self.source.read_bytes()

    @cached_property
    def identity(self) -> str:
        """The SHA-256 of the tokenizer.json, so that counts cached with one tokenizer are
        never taken for another's; the shipped copy's is known without reading it."""
        if self.source is None:
            return VENDORED_SHA256
        return hashlib.sha256(self._json).hexdigest()

    @cached_property
    def tokenizer(self) -> Tokenizer:
        try:
            tokenizer = Tokenizer.from_str(self._json.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception for a bad file
            raise TokenizerMissing(
                f"{self.source or VENDORED} is not a tokenizer.json tokenizers can load: {exc}"
            ) from exc
        self.__dict__.pop("_json", None)  # 11 MB not worth keeping once parsed
        return tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]


class CountCache:
    """A small SQLite store: key -> integer (token counts, term counts) and key -> text
    (outlines). Keys are derived from git blob ids, so they hold across repositories."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @cached_property
    def _db(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS numbers (key TEXT PRIMARY KEY, value INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS texts (key TEXT PRIMARY KEY, value TEXT)")
        return db

    def close(self) -> None:
        if "_db" in self.__dict__:
            self._db.close()
            del self.__dict__["_db"]

    def get_numbers(self, keys: Iterable[str]) -> dict[str, int]:
        return {k: int(v) for k, v in self._get("numbers", keys)}

    def get_texts(self, keys: Iterable[str]) -> dict[str, str]:
        return {k: str(v) for k, v in self._get("texts", keys)}

    def _get(self, table: str, keys: Iterable[str]) -> list[tuple[str, int | str]]:
        wanted = list(dict.fromkeys(keys))
        rows: list[tuple[str, int | str]] = []
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows += self._db.execute(
                f"SELECT key, value FROM {table} WHERE key IN ({marks})", chunk
            ).fetchall()
        return rows

    def put_numbers(self, values: dict[str, int]) -> None:
        self._put("numbers", values)

    def put_texts(self, values: dict[str, str]) -> None:
        self._put("texts", values)

    def _put(self, table: str, values: dict[str, int] | dict[str, str]) -> None:
        if not values:
            return
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)", values.items()
            )
