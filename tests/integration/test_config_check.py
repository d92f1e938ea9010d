"""`qwenfix config check PATH`: a file or a repository directory, clear errors, exit 1."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from workers.cli.main import app


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", "check", *args])
    return result.exit_code, result.output


def test_a_good_repository_directory_passes(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "qwenfix.yml").write_text("test: make check\n")
    code, out = check(str(tmp_path))
    assert code == 0
    assert ".github/qwenfix.yml: ok (sets test)" in out


def test_each_problem_is_named_and_the_exit_status_is_1(tmp_path: Path) -> None:
    bad = tmp_path / "qwenfix.yml"
    bad.write_text("tset: pytest\nlimits:\n  max_turns: 0\n")
    code, out = check(str(bad))
    assert code == 1
    assert f"error: {bad} is invalid" in out
    assert "  - limits.max_turns: Input should be greater than or equal to 1" in out
    assert "  - tset: Extra inputs are not permitted" in out


def test_bad_yaml_and_a_missing_file_fail(tmp_path: Path) -> None:
    (tmp_path / ".qwenfix.yml").write_text("test: [oops\n")
    code, out = check(str(tmp_path))
    assert code == 1 and f"error: {tmp_path / '.qwenfix.yml'} is not valid YAML" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = check(str(empty))
    assert code == 1 and "no config file (looked for .qwenfix.yml, .github/qwenfix.yml)" in out


def test_the_ignored_file_is_pointed_out(tmp_path: Path) -> None:
    (tmp_path / ".qwenfix.yml").write_text("test: tox\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "qwenfix.yml").write_text("test: make\n")
    code, out = check(str(tmp_path))
    assert code == 0
    assert "qwenfix.yml is ignored: .qwenfix.yml takes precedence" in out


def test_owner_defaults_are_checked_merged_under_the_file(tmp_path: Path) -> None:
    own = tmp_path / ".qwenfix.yml"
    own.write_text("test: tox\n")
    defaults = tmp_path / "defaults.yml"
    defaults.write_text("setup: make deps\n")
    code, out = check(str(own), "--defaults", str(defaults))
    assert code == 0 and "(sets setup, test)" in out
    defaults.write_text("limits: 3\n")
    code, out = check(str(own), "--defaults", str(defaults))
    assert code == 1 and f"error: {defaults} is invalid" in out
