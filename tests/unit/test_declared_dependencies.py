"""Every third-party package the code imports is a direct dependency in pyproject.toml,
not something that happens to arrive with another package: the product's imports in
`[project.dependencies]` (or the extra that needs them), the tests' and benchmarks' in
any extra. Imports are read from the source with `ast` (also those inside functions) and
mapped to distributions by importlib.metadata."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import packages_distributions
from pathlib import Path

from workers.engine.context.outline import GRAMMARS

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "workers", "sandbox")
DEVELOPMENT = ("tests", "benchmarks")
OURS = {*PRODUCT, *DEVELOPMENT}
SKIPPED = ("tests/eval_tasks",)  # repositories used as test data, with imports of their own
NOT_MODULES = {"_typeshed"}  # exists for type checkers only


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    if found is None:
        raise ValueError(f"cannot read a distribution name from {requirement!r}")
    return normalise(found.group(0))


def declared() -> tuple[set[str], set[str]]:
    """(what the product may use: dependencies and the non-dev extras, everything)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    product = {_name(r) for r in project["dependencies"]}
    product |= {_name(r) for extra, reqs in extras.items() if extra != "dev" for r in reqs}
    everything = product | {_name(r) for r in extras.get("dev", [])}
    return product, everything


def imports(files: Iterable[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level third-party module -> the files that import it."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in OURS or top in NOT_MODULES:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


def undeclared(modules: dict[str, set[str]], allowed: set[str]) -> list[str]:
    by_module = packages_distributions()
    problems = []
    for module, where in sorted(modules.items()):
        # Not installed (an extra left out here): its distribution is usually its name.
        distributions = {normalise(d) for d in by_module.get(module, [module])}
        if not distributions & allowed:
            problems.append(f"{module} (from {', '.join(sorted(distributions))}): {min(where)}")
    return problems


def _sources(folders: Iterable[str]) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(SKIPPED)
        # Downloaded trees (benchmarks/.cache: Django's releases) are material, not ours.
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    ]


def test_the_product_imports_only_what_it_declares() -> None:
    product, _ = declared()
    found = imports(_sources(PRODUCT))
    # The grammars are imported by name, one module per language, as a file needs it.
    for module, _function in GRAMMARS.values():
        found.setdefault(module, set()).add("workers/engine/context/outline.py")
    assert undeclared(found, product) == []


def test_the_tests_and_benchmarks_import_only_what_the_extras_declare() -> None:
    _, everything = declared()
    assert undeclared(imports(_sources(DEVELOPMENT)), everything) == []


def test_an_import_that_only_arrives_with_another_package_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f() -> None:\n    import jwt\n    from kombu import Queue\n")
    problems = undeclared(imports([source], tmp_path), {"kombu"})
    assert problems == ["jwt (from pyjwt): probe.py"]
