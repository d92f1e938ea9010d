"""Builds repos/scm-version.bundle, the task set's repository with history and a tag (a
plain directory has neither): a setuptools_scm project tagged v2.3.0, two commits before
the base. Deterministic (fixed dates and names), so the base commit in tasks.jsonl holds.

    python tests/eval_tasks/make_scm_bundle.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
FILES = {
    "pyproject.toml": (
        "[build-system]\n"
        'requires = ["setuptools>=64", "setuptools_scm>=8"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "scmpkg"\ndynamic = ["version"]\n\n'
        "[tool.setuptools]\npackages = [\"scmpkg\"]\n\n"
        "[tool.setuptools_scm]\n"
    ),
    "scmpkg/__init__.py": (
        "from importlib.metadata import version\n\n"
        '__version__ = version("scmpkg")\n\n\n'
        "def major_minor() -> str:\n"
        '    """The release line, e.g. "2.3"."""\n'
        '    return __version__.split(".")[0]\n'
    ),
    "tests/conftest.py": (
        "import pytest\n\nimport scmpkg\n\n\n"
        "def pytest_configure(config):\n"
        "    # As pytest's own `minversion`: a checkout that lost its version cannot test.\n"
        '    if not scmpkg.__version__.startswith("2.3."):\n'
        '        raise pytest.UsageError(f"scmpkg {scmpkg.__version__}: not a 2.3 checkout")\n'
    ),
    "tests/test_version.py": (
        "import scmpkg\n\n\n"
        "def test_a_release_of_2_3():\n"
        '    assert scmpkg.__version__.startswith("2.3.")\n'
    ),
}


def main() -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "tasks",
        "GIT_AUTHOR_EMAIL": "tasks@localhost",
        "GIT_COMMITTER_NAME": "tasks",
        "GIT_COMMITTER_EMAIL": "tasks@localhost",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "scm-version"
        repo.mkdir()
        git("init", "-q", "-b", "main")
        for path, text in FILES.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
        git("add", "-A")
        git("commit", "-qm", "scmpkg 2.3.0")
        git("tag", "-a", "v2.3.0", "-m", "2.3.0")
        for n in (1, 2):
            (repo / "NEWS").write_text(f"change {n}\n")
            git("add", "-A")
            git("commit", "-qm", f"change {n}")
        git("bundle", "create", "-q", str(HERE / "repos" / "scm-version.bundle"), "--all")
        print(git("rev-parse", "HEAD"))


if __name__ == "__main__":
    main()
