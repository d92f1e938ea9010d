"""Test controls: which changed paths steer the suite, and the overlay that restores them."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable

import pytest

from workers.engine import test_controls as tc
from workers.engine.change import ChangeStatus, FileChange

Files = dict[str, bytes]


def reader(files: Files) -> Callable[[str], bytes | None]:
    return files.get


def changes_between(base: Files, new: Files) -> list[FileChange]:
    changes = []
    for path in sorted(base.keys() | new.keys()):
        status: ChangeStatus
        if path not in base:
            status = "added"
        elif path not in new:
            status = "deleted"
        elif base[path] != new[path]:
            status = "modified"
        else:
            continue
        changes.append(FileChange(path=path, status=status))
    return changes


def controls(base: Files, new: Files) -> list[tc.TestControl]:
    return tc.test_controls(changes_between(base, new), reader(base), reader(new))


def overlay(base: Files, new: Files) -> tc.Overlay:
    return tc.base_overlay(controls(base, new), reader(base), reader(new))


def references(base: Files, new: Files) -> list[str]:
    return tc.runner_references(changes_between(base, new), reader(base), reader(new))


HOOK, CONFIG, TEST = tc.ControlKind.HOOK, tc.ControlKind.CONFIG, tc.ControlKind.TEST


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        # Python
        ("test_mean.py", TEST),
        ("pkg/mean_test.py", TEST),
        ("tests/helpers.py", TEST),
        ("src/pkg/testing/fixtures.py", TEST),
        ("test/data.json", TEST),
        # JavaScript / TypeScript
        ("src/sum.test.js", TEST),
        ("src/Button.test.tsx", TEST),
        ("lib/x.test.mjs", TEST),
        ("src/app.spec.ts", TEST),
        ("src/__tests__/sum.js", TEST),
        # Go, Rust, JVM, Ruby, PHP, C#
        ("pkg/sum_test.go", TEST),
        ("pkg/testdata/golden.txt", TEST),
        ("crate/tests/integration.rs", TEST),
        ("src/test/java/org/x/SumTest.java", TEST),
        ("app/src/test/kotlin/SumTest.kt", TEST),
        ("spec/models/user_spec.rb", TEST),
        ("lib/user_spec.rb", TEST),
        ("src/CalculatorTest.php", TEST),
        ("Calc.Tests/CalcTest.cs", TEST),
        ("UnitTests/Calc.cs", TEST),
        ("src/CalcTests.cs", TEST),
        # Hooks, at any depth, before tests
        ("conftest.py", HOOK),
        ("tests/conftest.py", HOOK),
        ("a/b/c/conftest.py", HOOK),
        ("sitecustomize.py", HOOK),
        ("src/usercustomize.py", HOOK),
        ("evil.pth", HOOK),
        ("lib/site-packages/x.pth", HOOK),
        # Whole-file configuration
        ("pytest.ini", CONFIG),
        ("tox.ini", CONFIG),
        ("noxfile.py", CONFIG),
        (".coveragerc", CONFIG),
        ("Makefile", CONFIG),
        ("sub/dir/makefile", CONFIG),
        ("GNUmakefile", CONFIG),
        (".qwenfix.yml", CONFIG),
        (".qwenfix.yaml", CONFIG),
        (".github/workflows/ci.yml", CONFIG),
        (".gitlab-ci.yml", CONFIG),
        (".circleci/config.yml", CONFIG),
        ("azure-pipelines.yml", CONFIG),
        ("Jenkinsfile", CONFIG),
        ("jest.config.js", CONFIG),
        ("web/vitest.config.ts", CONFIG),
        ("karma.conf.js", CONFIG),
        (".mocharc.json", CONFIG),
        (".mocharc.yml", CONFIG),
        ("phpunit.xml", CONFIG),
        ("phpunit.xml.dist", CONFIG),
        (".env", CONFIG),
        ("Taskfile.yml", CONFIG),
        ("justfile", CONFIG),
        ("tests/pytest.ini", CONFIG),
        # Neither
        ("src/contest.py", None),
        ("latest/x.py", None),
        ("attestation.py", None),
        ("src/testimony.py", None),
        ("protest/main.go", None),
        ("README.md", None),
        ("mathlib.py", None),
        ("docs/testing.md", None),
        ("src/inspector.js", None),
        ("pyproject.toml", None),  # judged by section, not whole
        ("setup.cfg", None),
        ("package.json", None),
        (".github/CODEOWNERS", None),
        ("path.py", None),
    ],
)
def test_control_kind(path: str, kind: tc.ControlKind | None) -> None:
    assert tc.control_kind(path) == kind


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/conftest.py", True),  # a test file too, though its kind is HOOK
        ("src/contest.py", False),
        ("latest/x.py", False),
        ("attestation.py", False),
        ("test_x.py", True),
    ],
)
def test_is_test_file(path: str, expected: bool) -> None:
    assert tc.is_test_file(path) is expected


def test_describe() -> None:
    hook = tc.TestControl(path="conftest.py", kind=HOOK, status="added")
    assert hook.describe() == "conftest.py (hook, added)"
    config = tc.TestControl(
        path="pyproject.toml", kind=CONFIG, status="modified", detail="[tool.pytest.ini_options]"
    )
    assert config.describe() == "pyproject.toml (config, modified: [tool.pytest.ini_options])"


def test_conftest_at_depth_is_a_hook_and_an_added_one_is_deleted() -> None:
    base = {"src/m.py": b"x = 1\n"}
    new = {**base, "src/pkg/deep/conftest.py": b"collect_ignore_glob = ['*']\n"}
    assert [(c.path, c.kind, c.status) for c in controls(base, new)] == [
        ("src/pkg/deep/conftest.py", HOOK, "added")
    ]
    assert overlay(base, new) == tc.Overlay(write={}, delete=["src/pkg/deep/conftest.py"])


def test_added_pth_is_a_hook() -> None:
    new = {"src/zz.pth": b"import os; os.environ['X'] = '1'\n"}
    (control,) = controls({}, new)
    assert (control.kind, control.status) == (HOOK, "added")
    assert overlay({}, new).delete == ["src/zz.pth"]


def test_modified_and_deleted_tests_are_restored_and_added_tests_kept() -> None:
    base = {
        "tests/test_a.py": b"def test_a(): assert f() == 2\n",
        "tests/test_b.py": b"def test_b(): assert g()\n",
    }
    new = {
        "tests/test_a.py": b"def test_a(): pass\n",
        "tests/test_new.py": b"def test_new(): assert h()\n",
    }
    found = controls(base, new)
    assert [(c.path, c.kind, c.status) for c in found] == [
        ("tests/test_a.py", TEST, "modified"),
        ("tests/test_b.py", TEST, "deleted"),
        ("tests/test_new.py", TEST, "added"),
    ]
    assert overlay(base, new) == tc.Overlay(write=base, delete=[])


def test_modified_whole_config_written_back_and_added_one_deleted() -> None:
    base = {"tox.ini": b"[tox]\nenvlist = py\n"}
    new = {"tox.ini": b"[tox]\nenvlist = lint\n", "pytest.ini": b"[pytest]\naddopts = -k x\n"}
    assert overlay(base, new) == tc.Overlay(write=base, delete=["pytest.ini"])


def test_ordinary_source_changes_are_no_controls() -> None:
    assert controls({"mathlib.py": b"a\n"}, {"mathlib.py": b"b\n", "docs/x.md": b"y\n"}) == []


PYPROJECT = b"""\
[project]
name = "mathlib"
version = "1.0"
dependencies = ["attrs"]

[tool.pytest.ini_options]
addopts = "-q"
testpaths = ["tests"]

[tool.ruff]
line-length = 100
"""
PYTEST_TABLE = b'[tool.pytest.ini_options]\naddopts = "-q"\ntestpaths = ["tests"]\n\n'


def test_pyproject_dependency_change_is_not_a_control() -> None:
    new = PYPROJECT.replace(b'["attrs"]', b'["attrs", "numpy"]').replace(b"1.0", b"1.1")
    assert controls({"pyproject.toml": PYPROJECT}, {"pyproject.toml": new}) == []


def test_pyproject_addopts_change_restored_keeping_new_dependency() -> None:
    new = PYPROJECT.replace(b'["attrs"]', b'["attrs", "numpy"]').replace(
        b'"-q"', b'"-q --deselect tests/test_mean.py"'
    )
    base_files, new_files = {"pyproject.toml": PYPROJECT}, {"pyproject.toml": new}
    (control,) = controls(base_files, new_files)
    assert (control.kind, control.status, control.detail) == (
        CONFIG,
        "modified",
        "[tool.pytest.ini_options]",
    )
    result = overlay(base_files, new_files)
    assert result.delete == []
    merged = tomllib.loads(result.write["pyproject.toml"].decode())
    assert merged["project"]["dependencies"] == ["attrs", "numpy"]
    assert merged["tool"]["pytest"]["ini_options"] == {"addopts": "-q", "testpaths": ["tests"]}
    assert merged["tool"]["ruff"] == {"line-length": 100}
    # Only the controlling table is rewritten: the project's own text stays as it was.
    assert result.write["pyproject.toml"] == new.replace(
        b'"-q --deselect tests/test_mean.py"', b'"-q"'
    )


def test_pyproject_section_added_by_the_change_is_removed() -> None:
    base = PYPROJECT.replace(PYTEST_TABLE, b"")
    new = (
        base.replace(b'["attrs"]', b'["attrs", "numpy"]')
        + b"\n[tool.pytest.ini_options]\naddopts = \"-p no:randomly -k 'not mean'\"\n"
    )
    base_files, new_files = {"pyproject.toml": base}, {"pyproject.toml": new}
    (control,) = controls(base_files, new_files)
    assert control.detail == "[tool.pytest.ini_options]"
    merged = tomllib.loads(overlay(base_files, new_files).write["pyproject.toml"].decode())
    assert merged["project"]["dependencies"] == ["attrs", "numpy"]
    assert "pytest" not in merged["tool"]
    assert merged["tool"]["ruff"] == {"line-length": 100}


def test_pyproject_section_removed_by_the_change_is_put_back() -> None:
    new = PYPROJECT.replace(PYTEST_TABLE, b"")
    merged = overlay({"pyproject.toml": PYPROJECT}, {"pyproject.toml": new}).write
    assert tomllib.loads(merged["pyproject.toml"].decode()) == tomllib.loads(PYPROJECT.decode())


def test_pyproject_plugin_entry_point_and_nested_path() -> None:
    new = PYPROJECT + b'\n[project.entry-points.pytest11]\nevil = "evil.plugin"\n'
    base_files, new_files = {"sub/pyproject.toml": PYPROJECT}, {"sub/pyproject.toml": new}
    (control,) = controls(base_files, new_files)
    assert control.detail == "[project.entry-points.pytest11] evil"
    merged = tomllib.loads(overlay(base_files, new_files).write["sub/pyproject.toml"].decode())
    assert "pytest11" not in merged["project"].get("entry-points", {})


def test_added_pyproject_deleted_only_when_it_holds_controls() -> None:
    plain = b'[project]\nname = "x"\n'
    assert controls({}, {"pyproject.toml": plain}) == []
    with_tox = plain + b'[tool.tox]\nlegacy_tox_ini = "[tox]"\n'
    assert overlay({}, {"pyproject.toml": with_tox}) == tc.Overlay(
        write={}, delete=["pyproject.toml"]
    )


def test_unparsable_pyproject_is_a_whole_file_control() -> None:
    base_files, new_files = {"pyproject.toml": PYPROJECT}, {"pyproject.toml": b"[project\n"}
    (control,) = controls(base_files, new_files)
    assert control.detail == "unparsable, whole file"
    assert overlay(base_files, new_files).write == base_files


SETUP_CFG = b"""\
[metadata]
name = mathlib

[options]
install_requires =
    attrs

[tool:pytest]
addopts = -q
"""


def test_setup_cfg_tool_pytest() -> None:
    new = SETUP_CFG.replace(b"    attrs\n", b"    attrs\n    numpy\n").replace(
        b"addopts = -q", b"addopts = -q -k 'not mean'"
    )
    base_files, new_files = {"setup.cfg": SETUP_CFG}, {"setup.cfg": new}
    (control,) = controls(base_files, new_files)
    assert (control.kind, control.detail) == (CONFIG, "[tool:pytest] addopts")
    merged = overlay(base_files, new_files).write["setup.cfg"].decode()
    assert "addopts = -q\n" in merged
    assert "numpy" in merged
    only_deps = SETUP_CFG.replace(b"    attrs\n", b"    attrs\n    numpy\n")
    assert controls(base_files, {"setup.cfg": only_deps}) == []


def test_setup_cfg_added_coverage_section_and_plugin_removed() -> None:
    new = SETUP_CFG + b"\n[coverage:run]\nomit = *\n\n[options.entry_points]\npytest11 =\n  e = e\n"
    base_files, new_files = {"setup.cfg": SETUP_CFG}, {"setup.cfg": new}
    (control,) = controls(base_files, new_files)
    assert control.detail == "[coverage:run] omit, [options.entry_points] pytest11"
    merged = overlay(base_files, new_files).write["setup.cfg"].decode()
    assert "coverage:run" not in merged
    assert "pytest11" not in merged


PACKAGE = {
    "name": "mathlib",
    "version": "1.0.0",
    "scripts": {"test": "jest", "build": "tsc"},
    "dependencies": {"left-pad": "^1.0.0"},
}


def test_package_json_scripts_test_restored_keeping_dependencies() -> None:
    changed = {
        **PACKAGE,
        "scripts": {"test": "jest --passWithNoTests || true", "build": "tsc"},
        "dependencies": {"left-pad": "^1.0.0", "lodash": "^4.0.0"},
    }
    base_files = {"web/package.json": json.dumps(PACKAGE).encode()}
    new_files = {"web/package.json": json.dumps(changed).encode()}
    (control,) = controls(base_files, new_files)
    assert (control.kind, control.detail) == (CONFIG, "scripts.test")
    merged = overlay(base_files, new_files).write["web/package.json"].decode()
    assert merged.endswith("}\n")
    assert merged.startswith('{\n  "name": "mathlib",\n')
    assert list(json.loads(merged)) == list(PACKAGE)  # key order kept
    assert json.loads(merged) == {**changed, "scripts": PACKAGE["scripts"]}


def test_package_json_dependency_change_alone_is_not_a_control() -> None:
    changed = {**PACKAGE, "dependencies": {"left-pad": "^2.0.0"}}
    assert (
        controls(
            {"package.json": json.dumps(PACKAGE).encode()},
            {"package.json": json.dumps(changed).encode()},
        )
        == []
    )


def test_package_json_added_jest_key_removed() -> None:
    changed = {**PACKAGE, "jest": {"testPathIgnorePatterns": ["."]}}
    base_files = {"package.json": json.dumps(PACKAGE).encode()}
    new_files = {"package.json": json.dumps(changed).encode()}
    (control,) = controls(base_files, new_files)
    assert control.detail == "jest.testPathIgnorePatterns"
    merged = json.loads(overlay(base_files, new_files).write["package.json"])
    assert merged == PACKAGE


def test_deleted_section_file_with_controls_is_written_back() -> None:
    base_files = {"package.json": json.dumps(PACKAGE).encode()}
    assert overlay(base_files, {}).write == base_files


def test_controls_are_ordered_by_path() -> None:
    new = {"z/conftest.py": b"", "a/test_x.py": b"", "Makefile": b"test:\n\ttrue\n"}
    assert [c.path for c in controls({}, new)] == ["Makefile", "a/test_x.py", "z/conftest.py"]


def test_test_controls_is_not_collected_as_a_test() -> None:
    assert getattr(tc.test_controls, "__test__", True) is False
    assert tc.TestControl.__test__ is False


MATHLIB = b"def mean(xs):\n    return sum(xs) / len(xs)\n"


def test_runner_references_in_added_lines_with_line_numbers() -> None:
    new = b"import os\nimport _pytest\n" + MATHLIB + b"\n\ndef _bye():\n    os._exit(0)\n"
    found = references({"mathlib.py": MATHLIB}, {"mathlib.py": new})
    assert found == ["mathlib.py:2: import _pytest", "mathlib.py:8: os._exit(0)"]


def test_runner_references_in_new_file_clipped() -> None:
    long = b"x = 1  # " + b"pluggy " * 40 + b"\n"
    (found,) = references({}, {"src/pkg/hack.py": b"\n" + long})
    assert found.startswith("src/pkg/hack.py:2: x = 1  # pluggy")
    assert len(found) == len("src/pkg/hack.py:2: ") + 120


def test_runner_references_ignore_runner_projects_tests_hooks_and_binaries() -> None:
    plugin = b"import pytest\n\n\ndef pytest_configure(config):\n    pass\n"
    base = {"plugin.py": plugin, "tests/test_m.py": b"", "blob.bin": b"\0"}
    new = {
        "plugin.py": plugin + b"import _pytest\n",
        "tests/test_m.py": b"import _pytest\n",
        "tests/helper_test.go": b"os._exit(1)\n",
        "conftest.py": b"from _pytest import main\n",
        "blob.bin": b"\0import _pytest\n",
        "latin.py": "# \xe9\nimport _pytest\n".encode("latin-1"),
    }
    assert references(base, new) == []


def test_runner_references_ignore_unchanged_and_moved_lines() -> None:
    base = {"m.py": b"a = 1\nunittest.main()\n"}  # base matches: skipped as a whole
    assert references(base, {"m.py": b"unittest.main()\na = 2\n"}) == []
    base = {"m.py": b"a = 1\nb = 2\n"}
    assert references(base, {"m.py": b"b = 2\na = 1\nPYTEST_ADDOPTS = '-x'\n"}) == [
        "m.py:3: PYTEST_ADDOPTS = '-x'"
    ]
