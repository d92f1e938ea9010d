"""The fakes (GitHub, the scripted model server, the in-memory sandbox and model) are test
fixtures: neither the installed package nor the image carries them."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_NAMES = re.compile(r"fake|scripted|memory_sandbox|inprocess", re.IGNORECASE)


def packaged() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])


def copied_into_image() -> list[str]:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources.extend(words[1:-1])
    return sources


def test_the_wheel_holds_only_the_product_packages() -> None:
    assert sorted(packaged()) == ["bot", "sandbox", "workers"]


def test_the_image_copies_nothing_from_tests_or_benchmarks() -> None:
    sources = copied_into_image()
    assert "bot" in sources and "workers" in sources
    assert not [s for s in sources if s.split("/")[0] in ("tests", "benchmarks", ".")]


def test_no_product_module_is_or_defines_a_fake() -> None:
    for package in packaged():
        for path in (ROOT / package).rglob("*.py"):
            assert not FAKE_NAMES.search(path.name), path
            tree = ast.parse(path.read_text())
            classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
            assert not [c for c in classes if FAKE_NAMES.search(c)], path
