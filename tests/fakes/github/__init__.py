"""A fake GitHub for tests and the demo (see server.py)."""

from tests.fakes.github.server import FakeGitHub

__all__ = ["FakeGitHub"]
