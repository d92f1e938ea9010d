"""Which changed paths control the test suite, and how to put the base's versions back.

The model that writes a fix can make tests pass without fixing anything: edit or delete the
failing test, add a conftest.py that skips everything, change the test command in a config
file, or drop a sitecustomize.py or .pth file that runs inside the interpreter. So the harness
judges a change by running the BASE commit's suite, and everything that selects or configures
it, over the change. This module names those controls and builds the overlay that restores
them; `runner_references` flags added code elsewhere that reaches into the test runner, which
no overlay can undo.
"""

from __future__ import annotations

import configparser
import io
import json
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

import tomlkit
import tomlkit.exceptions
from pydantic import BaseModel

from workers.engine.change import ChangeStatus, FileChange

Reader = Callable[[str], bytes | None]
_F = TypeVar("_F", bound=Callable[..., Any])


class ControlKind(StrEnum):
    TEST = "test"
    CONFIG = "config"
    HOOK = "hook"


class TestControl(BaseModel):
    __test__ = False  # a model, not a pytest test class
    path: str
    kind: ControlKind
    status: ChangeStatus
    detail: str = ""

    def describe(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.path} ({self.kind}, {self.status}{detail})"


class Overlay(BaseModel):
    write: dict[str, bytes]
    delete: list[str]


_HOOK_NAMES = frozenset({"conftest.py", "sitecustomize.py", "usercustomize.py"})
_CONFIG_NAMES = frozenset(
    {
        "pytest.ini",
        "tox.ini",
        "noxfile.py",
        ".coveragerc",
        "Makefile",
        "makefile",
        "GNUmakefile",
        ".qwenfix.yml",
        ".qwenfix.yaml",
        ".gitlab-ci.yml",
        "azure-pipelines.yml",
        "Jenkinsfile",
        "phpunit.xml",
        "phpunit.xml.dist",
        ".env",
        "Taskfile.yml",
        "justfile",
    }
)
_CONFIG_PREFIXES = ("jest.config.", "vitest.config.", "karma.conf.", ".mocharc")
_CONFIG_DIRS = (".github/workflows/", ".circleci/")
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "testdata", "spec"})
_TEST_NAME = re.compile(
    r"^test_.*\.py$|_test\.(py|go)$|\.test\.(js|jsx|ts|tsx|mjs|cjs|mts|cts)$|\.spec\.[^.]+"
    r"|_spec\.rb$|Test\.php$|Tests\.cs$"
)

# Files where only some parts steer the tests; the rest (dependencies, version) is the
# project's own business and a fix may legitimately change it.
_SECTION_FILES = frozenset({"pyproject.toml", "setup.cfg", "package.json"})
_PYPROJECT_TABLES = (
    "tool.pytest",
    "tool.coverage",
    "tool.tox",
    "tool.hatch.envs",
    "tool.poe",
    "tool.pdm.scripts",
    "project.entry-points.pytest11",
)
_PACKAGE_KEYS = ("scripts", "jest", "mocha", "ava", "nyc", "c8", "vitest", "tap")
_ENTRY_POINTS = "options.entry_points"
_PARSE_ERRORS = (ValueError, configparser.Error, tomlkit.exceptions.TOMLKitError)

_RUNNER = re.compile(
    "|".join(
        [
            r"\bimport\s+_?pytest\b",
            r"\bfrom\s+_?pytest\b",
            r"\b_pytest\b",
            r"\bpluggy\b",
            r"\bpytest_plugins\b",
            r"\bPYTEST_(ADDOPTS|PLUGINS|DISABLE_PLUGIN_AUTOLOAD)\b",
            r"\bhookimpl\b",
            r"\bos\._exit\s*\(",
            r"\bsys\.modules\[['\"]_?pytest",
            r"\bunittest\.(TestCase\.|main|skip)",
        ]
    )
)


def _not_a_test(fn: _F) -> _F:
    # `from workers.engine.test_controls import test_controls` in a test module would otherwise be
    # collected by pytest as a test asking for fixtures named changes, base and new.
    fn.__test__ = False  # type: ignore[attr-defined]
    return fn


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_test_file(path: str) -> bool:
    *dirs, name = path.split("/")
    if any(d in _TEST_DIRS or d.endswith("Tests") for d in dirs):
        return True
    return _TEST_NAME.search(name) is not None


def control_kind(path: str) -> ControlKind | None:
    name = _name(path)
    if name in _HOOK_NAMES or name.endswith(".pth"):
        return ControlKind.HOOK
    # Before tests: a pytest.ini or Makefile under tests/ configures the run as much as one
    # at the root, and an added one must go rather than stay like an added test.
    if name in _CONFIG_NAMES or name.startswith(_CONFIG_PREFIXES) or path.startswith(_CONFIG_DIRS):
        return ControlKind.CONFIG
    return ControlKind.TEST if is_test_file(path) else None


def _walk(obj: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return obj


class _CaseConfig(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # entry-point names and tool options are case-sensitive


def _cfg(text: str) -> _CaseConfig:
    parser = _CaseConfig(interpolation=None)
    parser.read_string(text)
    return parser


def _cfg_controls(section: str) -> bool:
    return section in ("tool:pytest", "pytest") or section.startswith(("coverage:", "tox:"))


def _parts(name: str, data: bytes) -> dict[str, Any]:
    """The controlling parts of a section file, by label; raises on unparsable input."""
    text = data.decode("utf-8-sig")
    if name == "pyproject.toml":
        doc = tomllib.loads(text)
        found = {label: _walk(doc, label.split(".")) for label in _PYPROJECT_TABLES}
        return {label: value for label, value in found.items() if value is not None}
    if name == "setup.cfg":
        cfg = _cfg(text)
        parts: dict[str, Any] = {s: dict(cfg[s]) for s in cfg.sections() if _cfg_controls(s)}
        if cfg.has_option(_ENTRY_POINTS, "pytest11"):
            parts[_ENTRY_POINTS] = {"pytest11": cfg[_ENTRY_POINTS]["pytest11"]}
        return parts
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("package.json is not an object")
    return {key: obj[key] for key in _PACKAGE_KEYS if key in obj}


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(
        k
        for k in before.keys() | after.keys()
        if k not in before or k not in after or before[k] != after[k]
    )


def _describe(name: str, label: str, before: Any, after: Any) -> list[str]:
    whole = label if name == "package.json" else f"[{label}]"
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [whole]
    described = []
    for key in _changed(before, after):
        if name == "package.json":
            described.append(f"{label}.{key}")
        elif name == "pyproject.toml" and dict in (type(before.get(key)), type(after.get(key))):
            described.append(f"[{label}.{key}]")
        else:
            described.append(f"[{label}] {key}")
    return described or [whole]


def _section_detail(name: str, before: bytes | None, after: bytes | None) -> str | None:
    try:
        old = _parts(name, before) if before is not None else {}
        new = _parts(name, after) if after is not None else {}
    except _PARSE_ERRORS:
        return "unparsable, whole file"
    described = [
        d
        for label in _changed(old, new)
        for d in _describe(name, label, old.get(label, {}), new.get(label, {}))
    ]
    return ", ".join(described) or None


_PATHLIKE = re.compile(r"(?<![\w/])[\w.][\w./-]*")


def named_in(command: str) -> frozenset[str]:
    """Paths a test command names (`sh scripts/test.sh`, `. ./ci.env`): whatever the command
    reads controls the run as much as pytest.ini does."""
    return frozenset(
        p.removeprefix("./") for p in _PATHLIKE.findall(command) if "/" in p or "." in p.strip(".")
    )


@_not_a_test
def test_controls(
    changes: list[FileChange], base: Reader, new: Reader, named: frozenset[str] = frozenset()
) -> list[TestControl]:
    """`named`: paths the test command names (see `named_in`), controls whole."""
    controls = []
    for change in sorted(changes, key=lambda c: c.path):
        kind, detail = control_kind(change.path), ""
        if kind is None and change.path in named:
            kind, detail = ControlKind.CONFIG, "named by the test command"
        if kind is None and _name(change.path) in _SECTION_FILES:
            found = _section_detail(_name(change.path), base(change.path), new(change.path))
            kind, detail = (None, "") if found is None else (ControlKind.CONFIG, found)
        if kind is not None:
            controls.append(
                TestControl(path=change.path, kind=kind, status=change.status, detail=detail)
            )
    return controls


def _merge_toml(text: str, base_text: str, labels: list[str]) -> str:
    doc, base_doc = tomlkit.parse(text), tomlkit.parse(base_text)
    for label in labels:
        *parents, last = label.split(".")
        restored = _walk(base_doc, label.split("."))
        parent: Any = doc
        for key in parents:
            if key not in parent:
                if restored is None:
                    break
                parent[key] = tomlkit.table(is_super_table=True)
            parent = parent[key]
        else:
            if restored is not None:
                parent[last] = restored
            elif last in parent:
                del parent[last]
    return tomlkit.dumps(doc)


def _merge_cfg(text: str, base_text: str, labels: list[str]) -> str:
    cfg, base_cfg = _cfg(text), _cfg(base_text)
    for label in labels:
        if label == _ENTRY_POINTS:
            if base_cfg.has_option(label, "pytest11"):
                if not cfg.has_section(label):
                    cfg.add_section(label)
                cfg[label]["pytest11"] = base_cfg[label]["pytest11"]
            elif cfg.has_section(label):
                cfg.remove_option(label, "pytest11")
        elif base_cfg.has_section(label):
            cfg[label] = dict(base_cfg[label])
        else:
            cfg.remove_section(label)
    out = io.StringIO()
    cfg.write(out)
    return out.getvalue()


def _merge_json(text: str, base_text: str, labels: list[str]) -> str:
    obj, base_obj = json.loads(text), json.loads(base_text)
    for label in labels:
        if label in base_obj:
            obj[label] = base_obj[label]  # an existing key keeps its place
        else:
            obj.pop(label, None)
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


_MERGERS = {"pyproject.toml": _merge_toml, "setup.cfg": _merge_cfg, "package.json": _merge_json}


def _restore(path: str, before: bytes, after: bytes | None) -> bytes:
    """The new file with its controlling parts from the base, or the base file if that fails."""
    name = _name(path)
    if after is None or control_kind(path) is not None or name not in _SECTION_FILES:
        return before
    try:
        old, new = _parts(name, before), _parts(name, after)
        merged = _MERGERS[name](
            after.decode("utf-8-sig"), before.decode("utf-8-sig"), _changed(old, new)
        ).encode()
        # Checked rather than trusted: a merge that leaves any control unlike the base's
        # would let the change judge itself.
        if _parts(name, merged) == old:
            return merged
    except (*_PARSE_ERRORS, TypeError, KeyError):  # e.g. a key that is a table at one side only
        pass
    return before


def base_overlay(controls: list[TestControl], base: Reader, new: Reader) -> Overlay:
    write: dict[str, bytes] = {}
    delete: list[str] = []
    for control in controls:
        if control.status == "added":
            if control.kind is not ControlKind.TEST:  # added tests run alongside the base's
                delete.append(control.path)
        elif (before := base(control.path)) is not None:
            write[control.path] = _restore(control.path, before, new(control.path))
    return Overlay(write=write, delete=delete)


def _text(data: bytes | None) -> str | None:
    if data is None or b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def runner_references(changes: list[FileChange], base: Reader, new: Reader) -> list[str]:
    found = []
    for change in sorted(changes, key=lambda c: c.path):
        if (
            change.status == "deleted"
            or is_test_file(change.path)
            or control_kind(change.path) is ControlKind.HOOK
        ):
            continue
        text = _text(new(change.path))
        before = _text(base(change.path)) or ""
        # A project that is itself about the runner (a pytest plugin) uses these names anyway.
        if text is None or _RUNNER.search(before):
            continue
        unmatched = Counter(before.split("\n"))
        for number, line in enumerate(text.split("\n"), 1):
            if unmatched[line] > 0:
                unmatched[line] -= 1
            elif _RUNNER.search(line):
                found.append(f"{change.path}:{number}: {line.strip()[:120]}")
    return found
