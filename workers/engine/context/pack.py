"""The repository packer: a directory tree, then files, inside an exact token budget.

When everything fits, every file goes in whole, in path order. When it does not, files are
ranked against the task (workers/engine/context/rank.py): the best go in whole, the next as
tree-sitter outlines, the rest by name only (they are in the tree). Files that must never
reach the model (binaries, lock files, vendored or generated code, anything secret-like)
are left out and listed as such.

Exactness: the pack is a concatenation of parts, each starting with `<` and ending with
`>\\n`. Qwen's pre-tokenizer always splits at such a boundary, so the token count of the
pack is exactly the sum of its parts' counts; each part is counted with the real tokenizer
and the count cached by git blob id. The tests check this against the tokenizer run on the
final text.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import BaseModel

from workers.engine.context.classify import ContextRules, excluded_by_content, excluded_by_name
from workers.engine.context.outline import language_of, outline
from workers.engine.context.rank import (
    Ranked,
    defines,
    is_test_or_doc,
    query_terms,
    rank_files,
    symbols,
)
from workers.engine.context.safety import neutralise
from workers.engine.context.sources import FileSource, RepoFile
from workers.engine.context.tokens import CountCache, TokenCounter
from workers.engine.secrets import secret_in

Mode = Literal["full", "outline", "omitted"]
TYPICAL_CHARS_PER_TOKEN = 3.0  # for sizing batches; a low guess counts a little extra
# Text never packs more densely than this (Django's densest files, migrations, take 7.2
# bytes a token): a size over it times the room certainly does not fit, uncounted.
MAX_CHARS_PER_TOKEN = 10.0
FULL_SHARE = 0.85  # of the room for files; outlines get the rest first
WANTED_SHARE = 0.5  # of the best score: such a file may use the outlines' room
TEST_DOC_SHARE = 0.25  # of the room for whole files: the most tests and docs may take
TREE_SHARE = 0.15
OUTLINE_BATCH = 24
OUTLINE_CRUMBS = 0.01  # of the room: less than this left, no more outlines are parsed
HEAD_BYTES = 8192  # enough to tell binary and generated files
OMITTED_LIST_LIMIT = 200
SUMMARY_RESERVE = 64
SECRET_LINE_RESERVE = 48


class FileReport(BaseModel):
    path: str
    tokens: int
    mode: Mode
    reason: str


class PackReport(BaseModel):
    tokens: int
    budget: int
    elapsed_s: float
    files: list[FileReport]

    def counts(self) -> dict[str, int]:
        out = {"full": 0, "outline": 0, "omitted": 0}
        for f in self.files:
            out[f.mode] += 1
        return out


@dataclass
class Pack:
    text: str
    report: PackReport


class BudgetTooSmall(Exception):
    """Not even the directory tree fits; the message says how much is needed."""


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()
    return f"{kind}:{digest}"


def file_part(path: str, text: str) -> str:
    body = text if text.endswith("\n") else text + "\n"
    return f'<file path="{neutralise(path)}">\n{neutralise(body)}</file>\n'


def outline_part(path: str, lines: int, text: str) -> str:
    return f'<outline path="{neutralise(path)}" lines="{lines}">\n{neutralise(text)}\n</outline>\n'


def tree_part(paths: list[str], *, directories_only: bool = False, depth: int | None = None) -> str:
    """Every file, one line per directory (`dir/: a.py b.py`): far fewer tokens than an
    indented tree. Too many files for the budget: directories with their file counts; still
    too many, directories down to `depth` levels, each with what lies below it."""
    by_dir: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        directory, _, name = path.rpartition("/")
        by_dir[directory].append(f'"{name}"' if " " in name else name)
    if depth is not None:
        files: dict[str, int] = defaultdict(int)
        below: dict[str, set[str]] = defaultdict(set)
        for directory, names in by_dir.items():
            parts = directory.split("/") if directory else []
            top = "/".join(parts[:depth])
            files[top] += len(names)
            if len(parts) > depth:
                below[top].add(directory)
        lines = [
            f"{top + '/' if top else './'} ({files[top]} files"
            + (f" in {len(below[top]) + 1} directories" if below[top] else "")
            + ")"
            for top in sorted(files)
        ]
        return f"<tree>\n{neutralise(chr(10).join(lines))}\n</tree>\n"
    lines = []
    for directory in sorted(by_dir):
        label = f"{directory}/" if directory else "./"
        names = by_dir[directory]
        lines.append(
            f"{label} ({len(names)} files)"
            if directories_only
            else f"{label}: {' '.join(sorted(names))}"
        )
    return f"<tree>\n{neutralise(chr(10).join(lines))}\n</tree>\n"


def omitted_part(omitted: dict[str, str]) -> str:
    if not omitted:
        return ""
    groups: dict[str, list[str]] = defaultdict(list)
    for path, reason in sorted(omitted.items()):
        groups[reason.split(" (", 1)[0]].append(path)
    lines = []
    for reason, paths in sorted(groups.items()):
        shown = ", ".join(paths[:OMITTED_LIST_LIMIT])
        more = (
            f" and {len(paths) - OMITTED_LIST_LIMIT} more"
            if len(paths) > OMITTED_LIST_LIMIT
            else ""
        )
        lines.append(f"{reason}: {shown}{more}")
    return f"<left_out>\n{neutralise(chr(10).join(lines))}\n</left_out>\n"


def _listing(files: list[RepoFile]) -> str:
    return hashlib.sha1(
        "".join(f"{f.path}\0{f.blob}\n" for f in files).encode(), usedforsecurity=False
    ).hexdigest()


class Packer:
    """Packs one file source. Holds per-run caches of decoded text; build one per pack."""

    def __init__(
        self, source: FileSource, *, rules: ContextRules, cache: CountCache, counter: TokenCounter
    ) -> None:
        self.source = source
        self.rules = rules
        self.cache = cache
        self.counter = counter
        self._texts: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        """Files found to carry a credential while selecting; left out like the others."""

    def pack(self, *, task: str, budget: int) -> Pack:
        started = time.perf_counter()
        files = sorted(self.source.files, key=lambda f: f.path)
        names = self.rules.matcher()
        omitted = {f.path: r for f in files if (r := excluded_by_name(f, names)) is not None}
        candidates = [f for f in files if f.path not in omitted]
        omitted.update(self._content_exclusions(candidates))
        candidates = [f for f in candidates if f.path not in omitted]

        tree = self._tree([f.path for f in files], budget * TREE_SHARE)
        used = self._tokens(tree) + self._tokens(omitted_part(omitted)) + SUMMARY_RESERVE
        if used > budget:
            raise BudgetTooSmall(
                f"a budget of {budget} tokens cannot hold the directory tree and the list of "
                f"left-out files ({used} tokens); give at least that"
            )
        room = budget - used

        by_path = {f.path: f for f in candidates}
        full: dict[str, int] = {}
        outlines: dict[str, tuple[str, int]] = {}
        ranked: list[Ranked] = []
        if sum(f.size for f in candidates) / MAX_CHARS_PER_TOKEN <= room:
            everything = self._full_counts(candidates)
            if sum(everything.values()) <= room:
                full = {p: n for p, n in everything.items() if self._clean(by_path[p])}
        if candidates and not full:
            ranked = self._rank(task, candidates)
            full, outlines = self._select(ranked, by_path, room)
        omitted.update(self.secrets)

        order = [r.path for r in ranked] if ranked else sorted(full)
        self.source.prefetch([by_path[p] for p in full])
        while True:
            body = [file_part(p, self._text(by_path[p])) for p in order if p in full] + [
                outlines[p][0] for p in order if p in outlines
            ]
            names_only = len(candidates) - len(full) - len(outlines) - len(self.secrets)
            left_out = omitted_part(omitted)
            summary = (
                f"<pack_summary>{len(files)} files: {len(full)} in full, "
                f"{len(outlines)} as outlines, {names_only} by name only, "
                f"{len(omitted)} left out</pack_summary>\n"
            )
            tokens = (
                self._tokens(tree)
                + self._tokens(left_out)
                + self._tokens(summary)
                + sum(full.values())
                + sum(n for _, n in outlines.values())
            )
            if tokens <= budget:
                break
            # Only reachable when credentials were found late and their listing outgrew its
            # reserve: give up the least relevant content until the budget holds again.
            last = next(p for p in reversed(order) if p in outlines or p in full)
            outlines.pop(last, None) or full.pop(last, None)
        report = PackReport(
            tokens=tokens,
            budget=budget,
            elapsed_s=round(time.perf_counter() - started, 3),
            files=self._report(files, full, outlines, omitted, ranked),
        )
        return Pack(text=tree + "".join(body) + left_out + summary, report=report)

    def _tree(self, paths: list[str], room: float) -> str:
        """The most detailed tree that fits `room`: every file, then directories, then
        fewer levels of directories; a tree certainly too large (no text is denser than
        MAX_CHARS_PER_TOKEN) is not even counted."""
        levels = max((p.count("/") for p in paths), default=0)
        coarser: list[Callable[[], str]] = [
            lambda: tree_part(paths, directories_only=True),
            *(partial(tree_part, paths, depth=d) for d in range(levels, 0, -1)),
        ]
        tree = tree_part(paths)
        for shorter in coarser:
            if len(tree) / MAX_CHARS_PER_TOKEN <= room and self._tokens(tree) <= room:
                break
            tree = shorter()
        return tree

    def _count_key(self, kind: str, *parts: str) -> str:
        # A count holds for one tokenizer only: the served model's may not be the shipped one.
        return _key(kind, self.counter.identity, *parts)

    def _tokens(self, part: str) -> int:
        if not part:
            return 0
        key = self._count_key("fixed", part)
        return self._count({key: part})[key]

    # -- content and counts ---------------------------------------------------------

    def _text(self, file: RepoFile) -> str:
        if file.path not in self._texts:
            self._texts[file.path] = self.source.read(file).decode("utf-8", errors="replace")
        return self._texts[file.path]

    def _count(self, parts: dict[str, str]) -> dict[str, int]:
        """cache key -> tokens; only what the cache does not know is counted."""
        known = self.cache.get_numbers(parts)
        todo = [k for k in parts if k not in known]
        if todo:
            fresh = dict(zip(todo, self.counter.count_many([parts[k] for k in todo]), strict=True))
            self.cache.put_numbers(fresh)
            known.update(fresh)
        return known

    def _clean(self, file: RepoFile) -> bool:
        """False (and the file recorded as left out) when it carries a credential."""
        key = f"secret:{file.blob}"
        known = self.cache.get_texts([key])
        if key not in known:
            known[key] = secret_in(self.source.read(file)) or ""
            self.cache.put_texts(known)
        if known[key]:
            self.secrets[file.path] = f"contains a credential-like string ({known[key]})"
        return not known[key]

    def _content_exclusions(self, files: list[RepoFile]) -> dict[str, str]:
        keys = {f.path: f"excl:{f.blob}" for f in files}
        known = self.cache.get_texts(keys.values())
        todo = [f for f in files if keys[f.path] not in known]
        self.source.prefetch(todo)
        fresh = {
            keys[f.path]: excluded_by_content(self.source.head(f, HEAD_BYTES)) or "" for f in todo
        }
        self.cache.put_texts(fresh)
        known.update(fresh)
        return {f.path: known[keys[f.path]] for f in files if known[keys[f.path]]}

    def _full_counts(self, files: list[RepoFile]) -> dict[str, int]:
        """path -> tokens of the file's whole part; cached files are not even read."""
        keys = {f.path: self._count_key("full", f.path, f.blob) for f in files}
        known = self.cache.get_numbers(keys.values())
        missing = [f for f in files if keys[f.path] not in known]
        self.source.prefetch(missing)
        known.update(self._count({keys[f.path]: file_part(f.path, self._text(f)) for f in missing}))
        return {f.path: known[keys[f.path]] for f in files}

    def _term_counts(
        self, files: list[RepoFile], terms: list[str], listing: str
    ) -> dict[str, dict[str, int]]:
        keys = {t: f"tf:{listing}:{t}" for t in terms}
        known = {k: json.loads(v) for k, v in self.cache.get_texts(keys.values()).items()}
        missing = [t for t in terms if keys[t] not in known]
        if missing:
            self.source.prefetch(files)
            fresh: dict[str, dict[str, int]] = {t: {} for t in missing}
            # Terms are ASCII identifiers, so bytes (no decoding, ASCII lower-casing) will do.
            needles = [(t, t.encode()) for t in missing]
            for f in files:
                low = self.source.read(f).lower()
                for term, needle in needles:
                    n = low.count(needle)
                    if n:
                        fresh[term][f.path] = n
            self.cache.put_texts({keys[t]: json.dumps(c, sort_keys=True) for t, c in fresh.items()})
            known.update({keys[t]: c for t, c in fresh.items()})
        by_path: dict[str, dict[str, int]] = defaultdict(dict)
        for term in terms:
            for path, n in known[keys[term]].items():
                by_path[path][term] = n
        return by_path

    def _rank(self, task: str, candidates: list[RepoFile]) -> list[Ranked]:
        by_path = {f.path: f for f in candidates}
        terms = query_terms(task)
        listing = _listing(candidates)
        counts = self._term_counts(candidates, terms, listing) if terms else {}
        defined = self._definitions(candidates, symbols(task), set(terms), counts, listing)
        return rank_files(
            task,
            [f.path for f in candidates],
            lambda _terms: counts,
            {f.path: f.size for f in candidates},
            lambda p: self._text(by_path[p]),
            definitions=defined,
        )

    def _definitions(
        self,
        files: list[RepoFile],
        names: list[str],
        counted: set[str],
        counts: dict[str, dict[str, int]],
        listing: str,
    ) -> dict[str, set[str]]:
        """path -> the task's symbols the file defines; only files that mention them are
        read (a file defining a name contains it), cached for this exact set of files."""
        keys = {n: f"def:{listing}:{n}" for n in names}
        known = {k: json.loads(v) for k, v in self.cache.get_texts(keys.values()).items()}
        for name in names:
            if keys[name] in known:
                continue
            low = name.lower()
            mentioning = (
                [f for f in files if counts.get(f.path, {}).get(low)] if low in counted else files
            )
            self.source.prefetch(mentioning)
            known[keys[name]] = sorted(f.path for f in mentioning if defines(self._text(f), name))
            self.cache.put_texts({keys[name]: json.dumps(known[keys[name]])})
        out: dict[str, set[str]] = defaultdict(set)
        for name in names:
            for path in known[keys[name]]:
                out[path].add(name)
        return out

    def _outlines(self, files: list[RepoFile]) -> dict[str, tuple[str, int]]:
        keys = {f.path: f"outline:{f.blob}:{language_of(f.path)}" for f in files}
        known = self.cache.get_texts(keys.values())
        missing = [f for f in files if keys[f.path] not in known]
        self.source.prefetch(missing)
        fresh = {}
        for f in missing:
            text = self._text(f)
            fresh[keys[f.path]] = f"{text.count(chr(10)) + 1}\n{outline(f.path, text)}"
        self.cache.put_texts(fresh)
        known.update(fresh)
        parts = {}
        for f in files:
            lines, _, body = known[keys[f.path]].partition("\n")
            if body.strip():
                parts[self._count_key("outline", f.path, f.blob)] = outline_part(
                    f.path, int(lines), body
                )
        counts = self._count(parts)
        return {
            f.path: (parts[k], counts[k])
            for f in files
            if (k := self._count_key("outline", f.path, f.blob)) in parts
        }

    # -- selection ------------------------------------------------------------------

    def _select(
        self, ranked: list[Ranked], by_path: dict[str, RepoFile], room: int
    ) -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
        full, used = self._select_full(ranked, by_path, room)
        outlines = self._select_outlines(ranked, by_path, room, full, used)
        return full, outlines

    def _select_full(
        self, ranked: list[Ranked], by_path: dict[str, RepoFile], room: int
    ) -> tuple[dict[str, int], int]:
        """Files in full, best first, and the room they (and secret placeholders) use."""
        full: dict[str, int] = {}
        used = 0
        full_room = int(room * FULL_SHARE)
        # Tests and docs are read, not fixed: a long test module named in a traceback must
        # not crowd out the source files that the fix will change.
        test_doc_room = full_room * TEST_DOC_SHARE
        score = {r.path: r.score for r in ranked}
        best = max(score.values(), default=0.0) or 1.0
        pending = [r.path for r in ranked]
        considered = 0.0

        def room_for(path: str) -> float:
            # A file the ranking clearly wants is not outlined so that lower-ranked files
            # fit whole: it may take the room kept for outlines.
            left = (room if score[path] >= WANTED_SHARE * best else full_room) - used
            return min(left, test_doc_room) if is_test_or_doc(path) else left

        # Count only what could plausibly go in: stop once the room left is crumbs, or once
        # candidates worth three times the room have been counted without filling it.
        while pending and full_room - used > full_room * 0.02 and considered < 3 * full_room:
            batch: list[str] = []
            estimate = 0.0
            while pending and (len(batch) < 8 or estimate < full_room - used):
                path = pending.pop(0)
                size = by_path[path].size
                considered += size / TYPICAL_CHARS_PER_TOKEN
                # Counting is most of a cold pack: a file too big for what is left, even at
                # the most characters a token ever takes, is not counted to be turned down.
                if size / MAX_CHARS_PER_TOKEN > room_for(path):
                    continue
                batch.append(path)
                estimate += size / TYPICAL_CHARS_PER_TOKEN
            counts = self._full_counts([by_path[p] for p in batch])
            for path in batch:
                if counts[path] <= room_for(path):
                    if self._clean(by_path[path]):
                        full[path] = counts[path]
                        used += counts[path]
                        test_doc_room -= counts[path] if is_test_or_doc(path) else 0
                    else:
                        used += SECRET_LINE_RESERVE + len(path.encode())
        return full, used

    def _select_outlines(
        self,
        ranked: list[Ranked],
        by_path: dict[str, RepoFile],
        room: int,
        full: dict[str, int],
        used: int,
    ) -> dict[str, tuple[str, int]]:
        """Outlines of the files not in full, best first, into what is left of the room."""
        outlines: dict[str, tuple[str, int]] = {}
        rest = [r.path for r in ranked if r.path not in full]
        for start in range(0, len(rest), OUTLINE_BATCH):
            # Crumbs: parsing another batch to place an outline or two is not worth its time.
            if room - used < max(16, room * OUTLINE_CRUMBS):
                break
            chunk = rest[start : start + OUTLINE_BATCH]
            found = self._outlines([by_path[p] for p in chunk])
            placed = 0
            for path in chunk:
                if path in found and used + found[path][1] <= room:
                    if self._clean(by_path[path]):
                        outlines[path] = found[path]
                        used += found[path][1]
                        placed += 1
                    else:
                        used += SECRET_LINE_RESERVE + len(path.encode())
            if not placed:
                break
        return outlines

    def _report(
        self,
        files: list[RepoFile],
        full: dict[str, int],
        outlines: dict[str, tuple[str, int]],
        omitted: dict[str, str],
        ranked: list[Ranked],
    ) -> list[FileReport]:
        rank = {r.path: (i + 1, r) for i, r in enumerate(ranked)}

        def why(path: str) -> str:
            if path not in rank:
                return "everything fits"
            position, r = rank[path]
            reasons = "; ".join(dict.fromkeys(r.why)) or "no signal from the task"
            return f"rank {position} ({reasons})"

        out = []
        for f in files:
            if f.path in full:
                out.append(
                    FileReport(path=f.path, tokens=full[f.path], mode="full", reason=why(f.path))
                )
            elif f.path in outlines:
                out.append(
                    FileReport(
                        path=f.path,
                        tokens=outlines[f.path][1],
                        mode="outline",
                        reason=f"{why(f.path)}; the whole file did not fit",
                    )
                )
            elif f.path in omitted:
                out.append(
                    FileReport(path=f.path, tokens=0, mode="omitted", reason=omitted[f.path])
                )
            else:
                out.append(
                    FileReport(
                        path=f.path,
                        tokens=0,
                        mode="omitted",
                        reason=f"{why(f.path)}; by name only, no room left",
                    )
                )
        return out
