"""The dependency upgrader on its own (it runs inside the sandbox; here on the host, with
this interpreter's pip and the real uv), against package indexes made of files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wheel
from workers.engine import upgrade_script

SCRIPT = Path(upgrade_script.__file__)
INDEX = "--no-index\n--find-links wheels\n"


def wheels(root: Path, *versions: str, name: str = "tinylib") -> None:
    (root / "wheels").mkdir(exist_ok=True)
    for version in versions:
        (root / "wheels" / f"{name}-{version}-py3-none-any.whl").write_bytes(
            wheel(name, version, f"VERSION = {version!r}\n")
        )


def upgrade(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = root.parent / f"{root.name}-report.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "UV_CACHE_DIR": str(root.parent / "uv-cache"),
        "PIP_NO_CACHE_DIR": "1",
    }
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(report), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return proc, json.loads(report.read_text()) if report.exists() else {}


def test_pins_move_within_their_major_version_and_keep_the_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    wheels(root, "1.0.0", "1.4.2", "2.0.0")
    wheels(root, "0.3.1", "0.3.9", "0.4.0", name="zerolib")
    (root / "requirements.txt").write_text(
        f"{INDEX}tinylib==1.0.0 ; python_version >= '3'  # keep me\nzerolib==0.3.1\n"
    )
    proc, report = upgrade(root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "requirements.txt").read_text() == (
        f"{INDEX}tinylib==1.4.2 ; python_version >= '3'  # keep me\nzerolib==0.3.9\n"
    )
    assert [(u["name"], u["from"], u["to"]) for u in report["upgrades"]] == [
        ("tinylib", "1.0.0", "1.4.2"),
        ("zerolib", "0.3.1", "0.3.9"),
    ]
    assert "tinylib 1.0.0 -> 1.4.2 (requirements.txt)" in proc.stdout

    proc, report = upgrade(root, "--allow-major")
    assert "tinylib==2.0.0" in (root / "requirements.txt").read_text()
    assert "zerolib==0.4.0" in (root / "requirements.txt").read_text()


def test_ranges_declared_in_pyproject_bound_the_pins(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    wheels(root, "1.0.0", "1.1.0", "1.2.0")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["tinylib>=1.0,<1.2"]\n'
    )
    (root / "requirements.txt").write_text(f"{INDEX}tinylib==1.0.0\n")
    proc, report = upgrade(root)
    assert proc.returncode == 0, proc.stderr
    assert "tinylib==1.1.0" in (root / "requirements.txt").read_text()
    (root / "requirements.txt").write_text(f"{INDEX}tinylib==1.1.0\n")
    proc, report = upgrade(root)
    assert report["upgrades"] == [] and "no upgrades" in proc.stdout


def test_an_unreachable_index_is_a_failure_that_says_so(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "requirements.txt").write_text("--no-index\n--find-links nowhere\ntinylib==1.0.0\n")
    proc, report = upgrade(root)
    assert proc.returncode == 0  # each pin on its own, then noted: nothing was changed
    assert report["upgrades"] == []
    assert any("tinylib" in note for note in report["notes"])
    assert (root / "requirements.txt").read_text().endswith("tinylib==1.0.0\n")


@pytest.mark.skipif(
    shutil.which("uv", path=str(Path(sys.executable).parent)) is None,
    reason="uv is a development dependency; reinstall with make bootstrap",
)
def test_uv_lock_is_upgraded_with_uv(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    wheels(root, "1.0.0")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinylib>=1.0,<2"]\n\n'
        '[tool.uv]\nno-index = true\nfind-links = ["wheels"]\n'
    )
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    uv = str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "lock"], cwd=root, check=True, capture_output=True, env=env)
    assert 'version = "1.0.0"' in (root / "uv.lock").read_text()
    wheels(root, "1.3.0", "2.0.0")
    proc, report = upgrade(root)
    assert proc.returncode == 0, proc.stderr
    assert [(u["ecosystem"], u["name"], u["from"], u["to"]) for u in report["upgrades"]] == [
        ("uv", "tinylib", "1.0.0", "1.3.0")
    ]
    assert 'version = "1.3.0"' in (root / "uv.lock").read_text()


def test_without_npm_or_uv_the_report_says_what_was_not_updated(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "package.json").write_text('{"dependencies": {"left-pad": "^1.0.0"}}')
    (root / "uv.lock").write_text("version = 1\n")
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(report_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/nonexistent", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(report_path.read_text())["notes"]
    assert "package.json was not updated: npm is not installed in the sandbox image" in notes
    assert "uv.lock was not updated: uv is not installed in the sandbox image" in notes
