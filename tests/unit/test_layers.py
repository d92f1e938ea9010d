"""The import contract: who may import whom, read from the source (every import statement,
also those inside functions), and no import cycles. docs/architecture.md draws the same."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "workers", "sandbox")
OURS = ("bot", "workers", "sandbox", "tests", "benchmarks")

# layer -> what its modules may import of ours (prefixes). The first matching layer wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("sandbox", ("sandbox",)),
    ("bot.contract", ("bot.contract",)),
    ("bot", ("bot",)),
    (
        "workers.settings",
        ("workers.settings", "workers.engine.maintenance_tasks", "workers.engine.cron"),
    ),
    # The engine writes trajectory events and reads the config file the contract names.
    (
        "workers.engine",
        (
            "workers.engine",
            "workers.settings",
            "sandbox",
            "bot.contract.events",
            "bot.contract.job",
        ),
    ),
    (
        "workers.eval",
        (
            "workers.eval",
            "workers.engine",
            "workers.settings",
            "sandbox",
            "bot.contract.events",
            "bot.contract.job",
        ),
    ),
    ("workers.github", ("workers.github", "workers.engine.git", "workers.engine.local_forge")),
    (
        "workers.jobs",
        (
            "workers.jobs",
            "workers.github",
            "workers.engine",
            "workers.settings",
            "bot.contract",
            "sandbox",
        ),
    ),
    (
        "workers.runtime",
        (
            "workers.runtime",
            "workers.jobs",
            "workers.github",
            "workers.engine",
            "workers.settings",
            "bot.contract",
            "sandbox",
        ),
    ),
    ("workers.cli.demo", ("workers", "bot", "sandbox", "tests.fakes")),
    ("workers.cli.github_demo", ("workers", "bot", "sandbox", "tests.fakes")),
    ("workers.cli", ("workers", "bot", "sandbox")),
    ("workers", ("workers",)),
]
# What the fix engine must run without: `qwenfix fix PATH` needs no queue, database or GitHub.
ENGINE_FORBIDS = ("celery", "kombu", "redis", "sqlalchemy", "alembic", "githubkit", "fastapi")
# Everything that holds or uses the App's private key and installation tokens.
KEY_HOLDERS = ("workers.github", "workers.jobs", "workers.runtime")


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules this source imports: `from pkg import mod` names pkg.mod when that is a
    module, relative imports resolved."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    known = set(sources)
    return {m: imports_of(m, src, pkg, known) for m, (src, pkg) in sources.items()}


def read_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    out = {}
    for top in PRODUCT:
        for path in (root / top).rglob("*.py"):
            out[module_name(path, root)] = (path.read_text(), path.name == "__init__.py")
    return out


def violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in sorted(edges.items()):
        layer = next(((name, allowed) for name, allowed in LAYERS if _matches(module, name)), None)
        if layer is None:
            continue
        name, allowed = layer
        for target in sorted(imported):
            ours = target.split(".")[0] in OURS
            if ours and not any(_matches(target, a) for a in allowed):
                found.append(f"{module} ({name}) imports {target}")
            if name == "workers.engine" and target.split(".")[0] in ENGINE_FORBIDS:
                found.append(f"{module} (the fix engine) imports {target}")
    return found


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(t for t in edges.get(module, ()) if t in edges)
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_import_keeps_to_its_layer() -> None:
    assert violations(graph(read_sources())) == []


def test_no_import_cycles() -> None:
    assert cycles(graph(read_sources())) == []


def test_the_receiver_reaches_nothing_that_holds_the_app_key() -> None:
    edges = graph(read_sources())
    for entry in ("bot.serve", "bot.receiver.app", "bot.dashboard.routes"):
        reached = reachable(edges, entry)
        assert not [m for m in reached if any(_matches(m, k) for k in KEY_HOLDERS)], entry
        assert not [m for m in reached if m.startswith("workers.")], entry


def test_every_layer_says_what_it_is() -> None:
    for package in (
        "bot",
        "bot.contract",
        "bot.receiver",
        "bot.dashboard",
        "workers",
        "workers.engine",
        "workers.github",
        "workers.jobs",
        "workers.runtime",
        "workers.cli",
        "workers.eval",
        "sandbox",
    ):
        init = ROOT / package.replace(".", "/") / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), package


def _with(
    sources: dict[str, tuple[str, bool]], module: str, line: str
) -> dict[str, tuple[str, bool]]:
    source, is_package = sources[module]
    return {**sources, module: (f"{source}\n{line}\n", is_package)}


def test_a_forbidden_import_is_caught() -> None:
    sources = read_sources()
    for module, line, expected in [
        (
            "bot.receiver.app",
            "from workers.github.app_auth import GitHubApp",
            "bot.receiver.app (bot) imports workers.github.app_auth",
        ),
        (
            "sandbox.protocol",
            "import workers.settings",
            "sandbox.protocol (sandbox) imports workers.settings",
        ),
        (
            "workers.engine.fix",
            "from bot.contract.store import JobStore",
            "workers.engine.fix (workers.engine) imports bot.contract.store",
        ),
        (
            "workers.engine.verify",
            "import celery",
            "workers.engine.verify (the fix engine) imports celery",
        ),
        (
            "workers.jobs.fix",
            "from workers.runtime.tasks import execute",
            "workers.jobs.fix (workers.jobs) imports workers.runtime.tasks",
        ),
        (
            "workers.engine.fix",
            "from tests.fakes.model_server import ScriptedModelServer",
            "workers.engine.fix (workers.engine) imports tests.fakes.model_server",
        ),
    ]:
        assert expected in violations(graph(_with(sources, module, line))), line


def test_a_cycle_is_caught_even_inside_a_function() -> None:
    sources = _with(
        read_sources(),
        "workers.cli.local_fix",
        "def later() -> None:\n    from workers.cli import main",
    )
    found = cycles(graph(sources))
    assert any({"workers.cli.local_fix", "workers.cli.main"} <= set(c) for c in found)
