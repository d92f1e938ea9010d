"""A fake GitHub for tests and the demo (see server.py)."""

from bot.fake_github.server import FakeGitHub

__all__ = ["FakeGitHub"]
