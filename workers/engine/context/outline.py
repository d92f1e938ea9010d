"""Outlines: a file's imports, classes and signatures with line numbers, from tree-sitter.

An outline lets the model know what a file offers, for a fraction of its tokens, when the
whole file does not fit. Languages without a grammar get a line-pattern fallback.

Each grammar is its own wheel (tree-sitter-python, tree-sitter-go, ...), compiled in, so
nothing is fetched at run time; a grammar's module is imported only when a file needs it.
"""

from __future__ import annotations

import importlib
import logging
import re
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Parser

log = logging.getLogger(__name__)

LANGUAGES = {
    "py": "python",
    "pyi": "python",
    "js": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "jsx": "javascript",
    "ts": "typescript",
    "tsx": "tsx",
    "go": "go",
    "rs": "rust",
    "java": "java",
    "kt": "kotlin",
    "c": "c",
    "h": "c",
    "cc": "cpp",
    "cpp": "cpp",
    "hpp": "cpp",
    "cxx": "cpp",
    "rb": "ruby",
    "php": "php",
    "cs": "csharp",
    "swift": "swift",
    "scala": "scala",
    "lua": "lua",
    "sh": "bash",
}
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "kotlin": ("tree_sitter_kotlin", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),  # PHP inside HTML, as .php files are
    "csharp": ("tree_sitter_c_sharp", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "scala": ("tree_sitter_scala", "language"),
    "lua": ("tree_sitter_lua", "language"),
    "bash": ("tree_sitter_bash", "language"),
}
"""language -> (module, function returning its grammar), one wheel per language."""
_DEFINITION = re.compile(
    r"(function|method|class|struct|interface|enum|trait|impl|module|namespace|"
    r"type_declaration|type_alias|type_spec|decorated_definition|constructor)"
)
_CONTAINER = re.compile(r"(class|struct|interface|impl|trait|module|namespace|object|enum)")
_WRAPPER = frozenset(("export_statement", "decorated_definition", "template_declaration"))
_FALLBACK = re.compile(
    r"^\s*(?:export\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?"
    r"(?:def|class|function|func|fn|impl|struct|interface|trait|enum|type|module)\b.*$",
    re.M,
)
MAX_SIGNATURE = 240


@cache
def _parser(language: str) -> Parser:
    from tree_sitter import Language, Parser

    module, function = GRAMMARS[language]
    return Parser(Language(getattr(importlib.import_module(module), function)()))


def language_of(path: str) -> str | None:
    return LANGUAGES.get(path.rsplit(".", 1)[-1].lower()) if "." in path else None


def outline(path: str, text: str) -> str:
    """Outline lines `NNN: signature`, nested members indented. Empty when nothing found."""
    language = language_of(path)
    if language is not None:
        try:
            tree = _parser(language).parse(text.encode("utf-8"))
        except Exception:  # a grammar that cannot load or parse: fall back, never fail
            log.debug("tree-sitter failed on %s", path, exc_info=True)
        else:
            lines: list[str] = []
            _walk(tree.root_node, 0, lines)
            return "\n".join(lines)
    return "\n".join(
        f"{text.count(chr(10), 0, m.start()) + 1}: {_clip(m.group(0).strip())}"
        for m in _FALLBACK.finditer(text)
    )


def _walk(node: Any, depth: int, lines: list[str]) -> None:
    for child in node.children:
        kind = child.type
        if kind in _WRAPPER:
            inner = [c for c in child.children if _DEFINITION.search(c.type)]
            target = inner[-1] if inner else child
            _emit(child, target, depth, lines)
            continue
        if "import" in kind and depth == 0:
            lines.append(f"{child.start_point[0] + 1}: {_clip(_text(child))}")
        elif _DEFINITION.search(kind) and not kind.endswith(("_body", "_list")):
            _emit(child, child, depth, lines)
        elif depth == 0 and kind in (
            "lexical_declaration",
            "variable_declaration",
            "const_declaration",
            "var_declaration",
        ):
            lines.append(f"{child.start_point[0] + 1}: {_clip(_text(child))}")


def _emit(start: Any, node: Any, depth: int, lines: list[str]) -> None:
    body = node.child_by_field_name("body")
    end = node.end_byte
    if body is not None:
        # Up to the last token before the body, so that comments there are left out.
        ends = [
            c.end_byte
            for c in node.children
            if c.end_byte <= body.start_byte and "comment" not in c.type
        ]
        end = max(ends, default=body.start_byte)
    signature = start.text[: end - start.start_byte].decode("utf-8", errors="replace")
    lines.append(f"{start.start_point[0] + 1}: {'    ' * depth}{_clip(signature)}")
    if body is not None and depth < 2 and _CONTAINER.search(node.type):
        _walk(body, depth + 1, lines)


def _text(node: Any) -> str:
    return str(node.text.decode("utf-8", errors="replace"))


def _clip(text: str) -> str:
    flat = " ".join(text.split()).rstrip("{: ")
    return flat if len(flat) <= MAX_SIGNATURE else flat[:MAX_SIGNATURE] + "…"
