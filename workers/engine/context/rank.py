"""Relevance of each file to the task, from cheap signals: paths, modules, symbols and
stack-trace frames named in the task; `Class.member` names; BM25 on the task's most
specific words, the title's counted double; rare code identifiers; import neighbours of the
best files and their tests. Each signal was kept because the recall benchmark's dev split
(benchmarks/recall.py, docs/performance.md) moved with it."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

MAX_TERMS = 24
MAX_SYMBOLS = 8
TOP_FOR_NEIGHBOURS = 5
TEST_DOC_FACTOR = 0.5
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_PATHLIKE = re.compile(r"[\w.\-/\\]+\.[A-Za-z0-9]{1,8}\b")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*){1,}\b")
_QUALIFIED = re.compile(r"\b([A-Z][A-Za-z0-9_]*[a-z][A-Za-z0-9_]*)\.([A-Za-z_]\w*)")
TITLE_WEIGHT = 2.0
TITLE_BONUS = 40  # a title's words are always among the terms
RARE_DF = 4
_PY_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)
_JS_IMPORT = re.compile(r"""(?:from\s+|require\(\s*|import\s*\(\s*)['"](\.{1,2}/[^'"]+)['"]""")
_STOPWORD_TEXT = """
the and for are but not you all any can had her was one our out has him his how its may
new now old see two who did get got let put say she too use with this that from have they
will what when where which while would there their then than them these those been being
into also just like some such only very more most other over same should could does each
fix bug issue error fails failing wrong instead expected actual returns return when after
before because about again here please thanks using used still make makes made cannot
description modified last
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass
class Ranked:
    path: str
    score: float
    why: list[str] = field(default_factory=list)


def title_of(task: str) -> str:
    """The task's first line: an issue's title, its most condensed statement."""
    return next((line for line in task.splitlines() if line.strip()), "")


def _code_words(task: str, title_bonus: float = 0.0) -> dict[str, float]:
    """Every candidate word with a weight: code-like identifiers first, then longer words;
    the class of a qualified name (`Subquery` in `Subquery.as_sql`) counts as code-like,
    and the title's words get `title_bonus`."""
    seen: dict[str, float] = {}
    title_end = len(title_of(task)) + (len(task) - len(task.lstrip()))
    heads = {m.start(1) for m in _QUALIFIED.finditer(task)}
    for match in _WORD.finditer(task):
        word = match.group(0)
        if word.lower() in STOPWORDS or word.isdigit():
            continue
        after = task[match.end() : match.end() + 1]
        before = task[match.start() - 1 : match.start()] if match.start() else ""
        code_like = (
            "_" in word.strip("_")
            or any(c.isupper() for c in word[1:])
            or (word[0].isupper() and any(c.isdigit() for c in word))  # E108, W042
            or after == "("
            or before in (".", "`")
            or match.start() in heads
        )
        weight = (
            len(word)
            + (20 if code_like else 0)
            + (5 if before == "`" else 0)
            + (10 if match.start() in heads else 0)
            + (title_bonus if match.start() < title_end else 0)
        )
        seen[word] = max(seen.get(word, 0.0), weight)
    return seen


def title_terms(task: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(title_of(task))} - STOPWORDS


_FRAME = re.compile(r'^\s*File "[^"\n]*", line \d+.*\n.*$', re.M)
_PLACEHOLDER = re.compile(r"^[a-z_]+\d+$")


def code_terms(task: str) -> list[str]:
    """The query terms that are identifiers in code form, lower-cased; not those only seen
    in a traceback's frames (the frames' files are named anyway) nor example names such
    as `field1`."""
    prose = _FRAME.sub("", task)
    coded = {
        w.lower()
        for w, weight in _code_words(prose).items()
        if weight >= 20 + len(w) and not _PLACEHOLDER.match(w)
    }
    return [t for t in query_terms(task) if t in coded]


def rare_mentions(
    terms: list[str], paths: Sequence[str], counts: dict[str, dict[str, int]]
) -> dict[str, tuple[float, str]]:
    """path -> (weight up to 1.5, why), for source files that mention an identifier of the
    task that almost no other source file does (`show_hidden_initial`, `E108`): BM25 sums
    many common words and lets one rare identifier drown."""
    sources = [p for p in paths if not is_test_or_doc(p)]
    found: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for term in terms:
        having = [p for p in sources if counts.get(p, {}).get(term)]
        if 0 < len(having) <= RARE_DF:
            for path in having:
                found[path].append((term, min(1.0, 2 / len(having))))
    return {
        path: (
            min(1.5, sum(w for _, w in hits)),
            f"mentions {', '.join(t for t, _ in hits)}, as few files do",
        )
        for path, hits in found.items()
    }


def qualified_names(task: str) -> list[tuple[str, str]]:
    """(class, member) for `Class.member` in the task: `QuerySet.none`, `Subquery.as_sql`."""
    return list(dict.fromkeys((m.group(1), m.group(2)) for m in _QUALIFIED.finditer(task)))


def query_terms(task: str) -> list[str]:
    """The task's most specific words, lower-cased, for BM25."""
    best: dict[str, float] = {}
    for word, weight in _code_words(task, title_bonus=TITLE_BONUS).items():
        best[word.lower()] = max(best.get(word.lower(), 0.0), weight)
    return [t for t, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_TERMS]


def symbols(task: str) -> list[str]:
    """Identifiers the task names in code form (`QuerySet`, `get_aggregation`, `f()`), and
    the classes of its qualified names."""
    words = _code_words(task)
    coded = sorted(
        (w for w, weight in words.items() if weight >= 20 + len(w)), key=lambda w: (-words[w], w)
    )[:MAX_SYMBOLS]
    return list(dict.fromkeys([*coded, *(cls for cls, _ in qualified_names(task))]))


_KEYWORD_BEFORE = re.compile(
    r"(?:^|\W)(?:class|def|function|func|fn|interface|struct|trait|enum|type|module)\s+$"
)


def defines(text: str, symbol: str) -> bool:
    """Whether `text` defines `symbol` (`def symbol`, `class symbol`, `fn symbol`, ...).

    Finds the name literally first: a regex that starts with the keywords would try every
    position of every file."""
    start = 0
    while (at := text.find(symbol, start)) != -1:
        start = at + len(symbol)
        if start < len(text) and (text[start].isalnum() or text[start] == "_"):
            continue
        if _KEYWORD_BEFORE.search(text, max(0, at - 24), at):
            return True
    return False


def named_paths(task: str, paths: Sequence[str]) -> dict[str, str]:
    """path -> why, for files the task names by path, module or trace frame."""
    by_suffix: dict[str, list[str]] = {}
    for path in paths:
        parts = path.split("/")
        for i in range(len(parts)):
            by_suffix.setdefault("/".join(parts[i:]), []).append(path)
    found: dict[str, str] = {}
    # (candidate, the fewest path parts a suffix match needs): a dotted name is a module
    # only when at least two of its parts match (`q.query` is an attribute, not query.py).
    candidates = [(m.replace("\\", "/").lstrip("./"), 1) for m in _PATHLIKE.findall(task)]
    for dotted in _DOTTED.findall(task):
        stem = dotted.replace(".", "/")
        candidates += [(f"{stem}.py", 2), (f"{stem}/__init__.py", 3)]
    for cand, fewest in candidates:
        parts = cand.split("/")
        # Longest suffix first: "/usr/lib/python3/site-packages/pkg/mod.py" -> "pkg/mod.py".
        for i in range(len(parts)):
            if i and len(parts) - i < fewest:
                break
            suffix = "/".join(parts[i:])
            hits = by_suffix.get(suffix)
            # A name many files share (`models.py`) tells nothing, unless it is the path.
            if hits and (len(hits) <= 3 or (i == 0 and "/" in suffix)):
                for hit in hits:
                    why = "named in the task" if "/" in suffix else "file name in the task"
                    found.setdefault(hit, why)
                break
    return found


def rank_files(
    task: str,
    paths: Sequence[str],
    term_counts: Callable[[list[str]], dict[str, dict[str, int]]],
    sizes: dict[str, int],
    read_text: Callable[[str], str],
    definitions: dict[str, set[str]] | None = None,
) -> list[Ranked]:
    """Scores every path. `term_counts(terms)` gives path -> term -> occurrences;
    `definitions` path -> symbols of the task that the file defines. Each signal adds to
    a file's score and says so in `why`, which the pack's report carries."""
    ranked = {p: Ranked(p, 0.0) for p in paths}

    def add(path: str, score: float, why: str | None) -> None:
        ranked[path].score += score
        if why:
            ranked[path].why.append(why)

    for path, score, why in task_signals(task, paths, term_counts, sizes, definitions or {}):
        add(path, score, why)
    top = sorted(ranked.values(), key=lambda r: -r.score)[:TOP_FOR_NEIGHBOURS]
    path_set = set(paths)
    for leader in (r for r in top if r.score > 0):
        for neighbour in imports_of(leader.path, read_text(leader.path), path_set):
            if neighbour != leader.path:
                add(neighbour, 8, f"imported by {leader.path}")
        for test in tests_of(leader.path, paths):
            add(test, 12, f"tests {leader.path}")
    # A fix changes code; tests and documentation are read, not fixed. They keep their
    # signals but yield to source files with the same evidence.
    for r in ranked.values():
        if r.score > 0 and is_test_or_doc(r.path):
            r.score *= TEST_DOC_FACTOR
    return sorted(ranked.values(), key=lambda r: (-r.score, r.path))


def task_signals(
    task: str,
    paths: Sequence[str],
    term_counts: Callable[[list[str]], dict[str, dict[str, int]]],
    sizes: dict[str, int],
    definitions: dict[str, set[str]],
) -> Iterator[tuple[str, float, str | None]]:
    """(path, score, why) for what the task itself points at."""
    for path, why in named_paths(task, paths).items():
        yield path, 100 if why == "named in the task" else 30, why
    terms = query_terms(task)
    in_title = title_terms(task)
    weights = {t: TITLE_WEIGHT for t in terms if t in in_title}
    counts = term_counts(terms) if terms else {}
    bm25 = bm25_scores(terms, paths, counts, sizes, weights)
    best = max(bm25.values(), default=0.0)
    for path, value in bm25.items():
        yield path, 40 * value / best, "words of the task" if value / best > 0.5 else None
    for path, (weight, why) in rare_mentions(code_terms(task), paths, counts).items():
        yield path, 20 * weight, why
    for path, (weight, why) in definition_weights(definitions).items():
        yield path, 25 * weight, why
    for path, why in qualified_definers(qualified_names(task), definitions).items():
        yield path, 40, why
    for path, why in stems_in_task(task, paths).items():
        yield path, 20, why


def bm25_scores(
    terms: list[str],
    paths: Sequence[str],
    counts: dict[str, dict[str, int]],
    sizes: dict[str, int],
    weights: dict[str, float] | None = None,
) -> dict[str, float]:
    """Okapi BM25 (k1 1.2, b 0.75); `weights` scales a term's part (the title's words)."""
    n = max(len(paths), 1)
    avg = sum(sizes.values()) / n or 1.0
    out: dict[str, float] = {}
    for term in terms:
        df = sum(1 for p in paths if counts.get(p, {}).get(term))
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5)) * (weights or {}).get(term, 1.0)
        for path in paths:
            tf = counts.get(path, {}).get(term, 0)
            if tf:
                norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * sizes.get(path, 0) / avg))
                out[path] = out.get(path, 0.0) + idf * norm
    return out


def definition_weights(definitions: dict[str, set[str]]) -> dict[str, tuple[float, str]]:
    """path -> (weight up to 2, why). A name defined in one or two files points at them;
    `to_python`, defined in twenty, points nowhere: each weighs by how few share it."""
    definers: dict[str, int] = {}
    for defined in definitions.values():
        for name in defined:
            definers[name] = definers.get(name, 0) + 1
    return {
        path: (
            min(2.0, sum(min(1.0, 2 / definers[name]) for name in defined)),
            f"defines {', '.join(sorted(defined))}",
        )
        for path, defined in definitions.items()
    }


def qualified_definers(
    names: list[tuple[str, str]], definitions: dict[str, set[str]]
) -> dict[str, str]:
    """path -> why, for the few files defining the class of a `Class.member` the task
    names: the member is in that class, whatever else shares the member's name."""
    definers: dict[str, list[str]] = defaultdict(list)
    for path, defined in definitions.items():
        for name in defined:
            definers[name].append(path)
    out: dict[str, str] = {}
    for cls, member in names:
        hits = definers.get(cls, [])
        if 0 < len(hits) <= 2:
            for path in hits:
                out.setdefault(path, f"defines {cls}, named as {cls}.{member}")
    return out


_DOC_SUFFIXES = (".txt", ".rst", ".md", ".adoc")
_TEST_PARTS = frozenset(("test", "tests", "testing", "spec", "specs", "__tests__"))


def is_test_or_doc(path: str) -> bool:
    parts = path.lower().split("/")
    name = parts[-1]
    return (
        any(p in _TEST_PARTS or p in ("doc", "docs") for p in parts[:-1])
        or name.startswith("test_")
        or name.rsplit(".", 1)[0].endswith(("_test", ".test", ".spec", "_spec"))
        or name.endswith(_DOC_SUFFIXES)
    )


_GENERIC_STEM_TEXT = """
__init__ index main base utils util models model views view tests test admin apps urls
forms settings common core types helpers config conftest setup mod lib
"""
_GENERIC_STEMS = frozenset(_GENERIC_STEM_TEXT.split())


def stems_in_task(task: str, paths: Sequence[str]) -> dict[str, str]:
    """path -> why, for files whose name is a word of the task (`inspectdb`, `serializer`)
    shared by few files: a name that many files carry tells nothing."""
    words = {w.lower() for w in _WORD.findall(task)}
    by_stem: dict[str, list[str]] = {}
    for path in paths:
        stem = path.rsplit("/", 1)[-1].split(".", 1)[0].lower()
        if len(stem) >= 4 and stem not in _GENERIC_STEMS and not is_test_or_doc(path):
            by_stem.setdefault(stem, []).append(path)
    out: dict[str, str] = {}
    for stem, hits in by_stem.items():
        if stem in words and len(hits) <= 3:
            for path in hits:
                out[path] = f"its name, {stem}, is a word of the task"
    return out


def imports_of(path: str, text: str, paths: set[str]) -> list[str]:
    out: list[str] = []
    if path.endswith(".py"):
        package = path.rsplit("/", 1)[0] if "/" in path else ""
        for module in (a or b for a, b in _PY_IMPORT.findall(text)):
            if module.startswith("."):
                depth = len(module) - len(module.lstrip("."))
                base = package.split("/")
                base = base[: len(base) - (depth - 1)] if depth > 1 else base
                rest = module.lstrip(".").replace(".", "/")
                stem = "/".join(filter(None, [*base, rest]))
            else:
                stem = module.replace(".", "/")
            for cand in (f"{stem}.py", f"{stem}/__init__.py", f"src/{stem}.py"):
                if cand in paths:
                    out.append(cand)
    elif path.endswith((".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs")):
        directory = path.rsplit("/", 1)[0] if "/" in path else ""
        for rel in _JS_IMPORT.findall(text):
            stem = _join(directory, rel)
            for ext in ("", ".ts", ".tsx", ".js", ".jsx", "/index.ts", "/index.js"):
                if stem + ext in paths:
                    out.append(stem + ext)
                    break
    return out


def _join(directory: str, rel: str) -> str:
    parts = [p for p in directory.split("/") if p]
    for piece in rel.split("/"):
        if piece == "..":
            parts = parts[:-1]
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def tests_of(path: str, paths: Sequence[str]) -> list[str]:
    name = path.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    if stem in ("__init__", "index", "main", "mod", "lib") or "test" in name.lower():
        return []
    low = stem.lower()
    prefixes = (
        f"test_{low}.",
        f"{low}_test.",
        f"{low}.test.",
        f"{low}.spec.",
        f"test{low}.",
        f"{low}tests.",
    )
    return [p for p in paths if p != path and p.rpartition("/")[2].lower().startswith(prefixes)]
