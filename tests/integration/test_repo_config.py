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
        ({"go.mod": "module x\n"}, "go test ./...", "go mod download"),
        ({"Cargo.toml": "[package]\n"}, "cargo test", "cargo fetch"),
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
