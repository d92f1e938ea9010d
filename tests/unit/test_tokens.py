"""The tokenizer qwenfix counts with: Qwen3's tokenizer.json shipped in the package and
checked by its SHA-256, or the served model's own when QWENFIX_TOKENIZER_PATH names it.
Never downloaded, and never taken for another: counts are cached per tokenizer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from workers.engine.context import tokens
from workers.engine.context.classify import ContextRules
from workers.engine.context.pack import Packer
from workers.engine.context.sources import RepoFile, blob_id
from workers.engine.context.tokens import (
    VENDORED_SHA256,
    CountCache,
    TokenCounter,
    TokenizerMismatch,
    TokenizerMissing,
    unpack_checked,
    vendored_tokenizer_json,
)

SHIPPED = Path(tokens.__file__).parent / "qwen3_tokenizer"


def test_the_shipped_file_is_qwen3s_tokenizer() -> None:
    """Byte-identical to Qwen's (the digest Qwen3's model repositories publish), and it
    has Qwen3's shape: 151,643 byte-level BPE tokens and the 26 added tokens after them,
    with the tool-call and thinking tags the Qwen3-Coder format relies on."""
    data = vendored_tokenizer_json()
    assert len(data) == 11_422_654
    spec = json.loads(data)
    assert spec["model"]["type"] == "BPE" and len(spec["model"]["vocab"]) == 151_643
    assert len(spec["model"]["merges"]) == 151_387
    added = {t["content"]: t["id"] for t in spec["added_tokens"]}
    assert sorted(added.values()) == list(range(151_643, 151_669))
    assert added["<|endoftext|>"] == 151_643 and added["<|im_end|>"] == 151_645
    assert added["<tool_call>"] == 151_657 and added["</tool_call>"] == 151_658
    assert added["<tool_response>"] == 151_665 and added["</think>"] == 151_668
    assert {p.name for p in SHIPPED.iterdir()} >= {"LICENSE", "NOTICE", "tokenizer.json.gz"}
    assert "Apache License" in (SHIPPED / "LICENSE").read_text()
    assert VENDORED_SHA256 in (SHIPPED / "NOTICE").read_text()


def test_the_counter_counts_with_it() -> None:
    counter = TokenCounter()
    assert counter.source is None and counter.identity == VENDORED_SHA256
    # The prompt's own tags are one token each, as the server counts them.
    assert counter.tokenizer.encode("<tool_call>").ids == [151_657]
    assert counter.count("<|im_start|>user\n") == 3
    assert counter.count_many(["def f():\n    return 1\n", ""]) == [
        counter.count("def f():\n    return 1\n"),
        0,
    ]


def test_a_changed_copy_is_refused_with_the_reason() -> None:
    with pytest.raises(TokenizerMismatch, match=f"not Qwen3's {VENDORED_SHA256}"):
        unpack_checked(gzip.compress(b'{"model": {}}'))
    with pytest.raises(TokenizerMismatch, match="not a readable gzip file"):
        unpack_checked(b"not gzip")
    truncated = (SHIPPED / "tokenizer.json.gz").read_bytes()[:-100]
    with pytest.raises(TokenizerMismatch):
        unpack_checked(truncated)


def test_a_missing_copy_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VENDORED", "qwen3_tokenizer/absent.json.gz")
    with pytest.raises(TokenizerMissing, match="QWENFIX_TOKENIZER_PATH"):
        TokenCounter().count("x")


def test_the_setting_names_the_model_directory_or_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "Qwen3-Coder"
    model.mkdir()
    (model / "tokenizer.json").write_bytes(vendored_tokenizer_json())
    monkeypatch.setenv("QWENFIX_TOKENIZER_PATH", str(model))
    counter = TokenCounter()
    assert counter.source == model / "tokenizer.json"
    assert counter.identity == VENDORED_SHA256  # the same bytes: the same cached counts
    assert counter.count("print('hi')\n") == TokenCounter(model / "tokenizer.json").count(
        "print('hi')\n"
    )
    monkeypatch.setenv("QWENFIX_TOKENIZER_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(TokenizerMissing, match=r"neither a tokenizer\.json nor a directory"):
        TokenCounter().count("x")


def test_a_file_tokenizers_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{}")
    with pytest.raises(TokenizerMissing, match=r"not a tokenizer\.json tokenizers can load"):
        TokenCounter(bad).count("x")


class MemoryFiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self._data = files
        self.files = [RepoFile(p, blob_id(d), len(d)) for p, d in sorted(files.items())]

    def read(self, file: RepoFile) -> bytes:
        return self._data[file.path]

    def head(self, file: RepoFile, size: int) -> bytes:
        return self._data[file.path][:size]

    def prefetch(self, files: list[RepoFile]) -> None:
        return None


def test_counts_cached_with_one_tokenizer_are_not_used_for_another(tmp_path: Path) -> None:
    """One cache file serves every pack on a worker; a worker pointed at another model's
    tokenizer must count afresh rather than trust the shipped tokenizer's numbers."""
    words = WordLevel({"[UNK]": 0}, unk_token="[UNK]")
    other = Tokenizer(words)
    other.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    other.save(str(tmp_path / "tokenizer.json"))
    files = {"a.py": b"def alpha(x):\n    return x * 2\n" * 20}
    cache = CountCache(tmp_path / "counts.sqlite3")
    try:
        results = [
            Packer(MemoryFiles(files), rules=ContextRules(), cache=cache, counter=counter)
            .pack(task="alpha", budget=50_000)
            .report.tokens
            for counter in (TokenCounter(), TokenCounter(tmp_path / "tokenizer.json"))
        ]
    finally:
        cache.close()
    assert TokenCounter(tmp_path / "tokenizer.json").identity != VENDORED_SHA256
    assert results[0] != results[1]
