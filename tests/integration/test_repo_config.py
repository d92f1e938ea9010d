from __future__ import annotations

import pytest

from workers.engine.repo_config import RepoConfigError, load_repo_config


def load(files: dict[str, str]) -> object:
    return load_repo_config(sorted(files), lambda p: files[p].encode() if p in files else None)


@pytest.mark.parametrize(
    ("files", "test", "setup"),
    [
        ({"pkg/a.py": "", "tests/test_a.py": ""}, "python -m pytest", None),
        (
            {"tests/test_a.py": "", "requirements.txt": "x"},
            "python -m pytest",
            "pip install -r requirements.txt",
        ),
        (
            {"pyproject.toml": "[project]\nname='x'\n[tool.pytest.ini_options]\n"},
            "python -m pytest",
            "pip install -e .",
        ),
        ({"tox.ini": "[tox]\n"}, "tox", "pip install tox"),
        (
            {"package.json": '{"scripts": {"test": "jest"}}', "package-lock.json": "{}"},
            "npm test",
            "npm ci",
        ),
        (
            {"go.mod": "module x\n"},
            "go test ./...",
            "go mod download && { go test -run '^$' ./... >/dev/null 2>&1 || true; }",
        ),
        (
            {"Cargo.toml": "[package]\n"},
            "cargo test",
            "cargo fetch && { cargo test --no-run >/dev/null 2>&1 || true; }",
        ),
        ({"Makefile": "all:\n\techo\ntest:\n\t./run-tests\n"}, "make test", None),
    ],
)
def test_detection(files: dict[str, str], test: str, setup: str | None) -> None:
    config = load(files)
    assert (config.test, config.setup) == (test, setup)  # type: ignore[attr-defined]


def test_npm_placeholder_script_is_not_a_test_command() -> None:
    script = 'echo \\"Error: no test specified\\" && exit 1'
    files = {"package.json": '{"scripts": {"test": "' + script + '"}}'}
    assert load(files).test is None  # type: ignore[attr-defined]


def test_config_file_overrides_and_fills_in_from_detection() -> None:
    files = {
        ".qwenfix.yml": "test: make check\nsetup_network: false\nlimits:\n  max_turns: 9\n",
        "tests/test_a.py": "",
        "requirements.txt": "x",
    }
    config = load(files)
    assert config.test == "make check"  # type: ignore[attr-defined]
    assert config.setup == "pip install -r requirements.txt"  # type: ignore[attr-defined]
    assert config.setup_network is False  # type: ignore[attr-defined]
    assert config.limits.max_turns == 9  # type: ignore[attr-defined]
    assert config.source == ".qwenfix.yml"  # type: ignore[attr-defined]


def test_openhands_setup_hook_is_honoured_without_config() -> None:
    files = {".openhands/setup.sh": "pip install -e .", "tests/test_a.py": ""}
    assert load(files).setup == "bash .openhands/setup.sh"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test: [oops", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("test: pytest\nlimits:\n  max_turns: 0\n", "limits.max_turns"),
        ("test: pytest\nsetup_netwrk: true\n", "setup_netwrk"),
    ],
)
def test_bad_config_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        load({".qwenfix.yml": text})
    assert message in str(info.value)


def test_the_config_may_live_under_dot_github_and_the_root_file_wins() -> None:
    nested = {".github/qwenfix.yml": "test: make check\n", "tests/test_a.py": ""}
    config = load_repo_config(sorted(nested), lambda p: nested[p].encode())
    assert (config.test, config.source) == ("make check", ".github/qwenfix.yml")
    both = {**nested, ".qwenfix.yml": "test: tox\n"}
    config = load_repo_config(sorted(both), lambda p: both[p].encode())
    assert (config.test, config.source) == ("tox", ".qwenfix.yml")


def test_owner_defaults_lie_under_the_repository_file_key_by_key() -> None:
    from workers.engine.repo_config import ConfigDefaults

    defaults = ConfigDefaults(
        source="octo-org/.github:.qwenfix.yml",
        text="setup: make deps\nreview_tests: true\nlimits:\n  max_turns: 5\n  max_wall_s: 60\n",
    )
    files = {".qwenfix.yml": "test: make check\nlimits:\n  max_turns: 9\n", "Makefile": ""}
    config = load_repo_config(sorted(files), lambda p: files[p].encode(), defaults)
    assert (config.test, config.setup, config.review_tests) == ("make check", "make deps", True)
    # The repository's `limits:` replaces the defaults' whole: top-level keys only merge.
    assert (config.limits.max_turns, config.limits.max_wall_s) == (9, None)
    assert config.source == ".qwenfix.yml over octo-org/.github:.qwenfix.yml"
    # Without a file of its own, the repository gets the defaults, and detection the rest.
    only = {"tests/test_a.py": ""}
    config = load_repo_config(sorted(only), lambda p: None, defaults)
    assert (config.test, config.setup) == ("python -m pytest", "make deps")
    assert config.source == "octo-org/.github:.qwenfix.yml"


def test_a_bad_defaults_file_is_named_as_the_owner_file() -> None:
    from workers.engine.repo_config import ConfigDefaults

    defaults = ConfigDefaults(source="octo-org/.github:.qwenfix.yml", text="limits: 3\n")
    with pytest.raises(RepoConfigError) as info:
        load_repo_config([".qwenfix.yml"], lambda p: b"test: tox\n", defaults)
    assert info.value.source == "octo-org/.github:.qwenfix.yml"
    assert [p.split(":")[0] for p in info.value.problems] == ["limits"]


def test_the_file_cannot_set_where_it_came_from() -> None:
    with pytest.raises(RepoConfigError) as info:
        load({".qwenfix.yml": "test: tox\nsource: elsewhere\n"})
    assert info.value.problems == ["source: Extra inputs are not permitted"]
