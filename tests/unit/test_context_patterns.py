"""The pack's `exclude` and `keep` patterns are gitignore patterns, matched as git matches
them (pathspec), where the home-made matcher before them was not: it let `tests/fixtures/`
and `/build/` match nothing and `src/*.py` reach into `src/a/b.py`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from workers.engine.context.classify import ContextRules, NameRules, excluded_by_name
from workers.engine.context.sources import RepoFile
from workers.engine.repo_config import RepoConfigError, detect, parse_repo_config

# (patterns, path, the pattern that excludes it or None). The first three were wrong before.
CASES = [
    (["tests/fixtures/"], "tests/fixtures/data/a.json", "tests/fixtures/"),
    (["tests/fixtures/"], "pkg/tests/fixtures/a.json", None),  # a slash inside: anchored
    (["/build/"], "build/out.js", "/build/"),
    (["/build/"], "tools/build/out.js", None),
    (["/build/"], "build", None),  # a file named build is not the directory
    (["src/*.py"], "src/a.py", "src/*.py"),
    (["src/*.py"], "src/a/b.py", None),  # `*` stays within one component
    (["src/**/*.py"], "src/a/b.py", "src/**/*.py"),
    (["**/gen/*.py"], "gen/x.py", "**/gen/*.py"),  # `**/` also matches no directory
    (["**/gen/*.py"], "a/b/gen/x.py", "**/gen/*.py"),
    (["docs/**"], "docs/a/b.md", "docs/**"),
    (["a/**/b.txt"], "a/b.txt", "a/**/b.txt"),
    (["a/**/b.txt"], "a/x/y/b.txt", "a/**/b.txt"),
    (["snapshots/"], "x/y/snapshots/z/s.txt", "snapshots/"),  # no inner slash: any depth
    (["fixtures"], "x/fixtures/a.py", "fixtures"),  # a bare name also names directories
    (["*.snap"], "deep/er/a.snap", "*.snap"),
    (["*.log", "!keep.log"], "logs/keep.log", None),  # negation re-includes
    (["*.log", "!keep.log"], "logs/other.log", "*.log"),
    (["!keep.log", "*.log"], "keep.log", "*.log"),  # the last match wins
    (["#a comment", ""], "#a comment", None),
    (["\\#literal"], "#literal", "\\#literal"),
    (["data/[0-9]*.csv"], "data/1.csv", "data/[0-9]*.csv"),
    (["data/[0-9]*.csv"], "data/x.csv", None),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), CASES)
def test_patterns_mean_what_they_mean_in_gitignore(
    patterns: list[str], path: str, expected: str | None
) -> None:
    assert NameRules(patterns, 1).match(path) == expected


def test_the_same_answers_as_git(tmp_path: Path) -> None:
    """git check-ignore on the same patterns and files, as the authority. (Not compared: a
    file re-included under an excluded directory, where we deliberately differ; below.)"""
    patterns = sorted({p for ps, _, _ in CASES for p in ps if not p.startswith(("#", "!"))})
    paths = sorted({path for _, path, _ in CASES} | {"keep.log", "x/build/y", "src/b.py"})
    paths = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]  # files only
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("\n".join(patterns) + "\n")
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    done = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    rules = NameRules(patterns, 1)
    assert {p for p in paths if rules.match(p)} == set(done.stdout.split())


def test_keep_re_includes_even_under_an_excluded_directory() -> None:
    """Unlike git, which never looks inside an excluded directory: `keep: [vendor/ours/]`
    is how a repository keeps its own vendored code and leaves out the rest."""
    rules = ContextRules(keep=["vendor/ours/"]).matcher()
    assert rules.match("vendor/ours/lib.go") is None
    assert rules.match("vendor/theirs/lib.go") == "vendor/"
    assert ContextRules(keep=["vendor/"]).matcher().match("vendor/theirs/lib.go") is None


def test_exclude_wins_over_keep_and_keep_over_the_defaults() -> None:
    rules = ContextRules(keep=["dist/", "*.min.js"], exclude=["dist/old/"]).matcher()
    assert rules.match("dist/app.js") is None
    assert rules.match("web/app.min.js") is None
    assert rules.match("dist/old/app.js") == "dist/old/"
    assert rules.match("node_modules/x/index.js") == "node_modules/"  # not kept: still out


def test_the_report_names_the_pattern_and_lock_files_stay_lock_files() -> None:
    rules = ContextRules(exclude=["tests/fixtures/"]).matcher()

    def reason(path: str) -> str | None:
        return excluded_by_name(RepoFile(path=path, blob="0" * 40, size=10), rules)

    assert reason("tests/fixtures/big.json") == "excluded by pattern tests/fixtures/"
    assert reason("web/yarn.lock") == "lock file"
    assert reason("pkg/tests/fixtures/big.json") is None


@pytest.mark.parametrize("pattern", ["!", "data/[z-a].csv", "trailing\\"])
def test_a_pattern_git_would_reject_is_a_config_error(pattern: str) -> None:
    raw = f"context:\n  exclude: [{json.dumps(pattern)}]\n".encode()
    with pytest.raises(RepoConfigError, match="not a gitignore pattern"):
        parse_repo_config(raw)


def test_detection_finds_tests_at_any_depth_by_the_same_rules() -> None:
    found = detect(["pkg/tests/test_models.py", "pkg/models.py"], lambda _path: None)
    assert found.test == "python -m pytest"
    assert detect(["pkg/models.py", "README.md"], lambda _path: None).test is None
