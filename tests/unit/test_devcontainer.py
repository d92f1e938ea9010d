"""A dev container's image and postCreateCommand, from JSON with comments."""

from __future__ import annotations

import pytest

from workers.engine.devcontainer import devcontainer, parse_jsonc
from workers.engine.repo_config import detect


def test_jsonc_comments_and_trailing_commas() -> None:
    text = """{
      // the image
      "image": "mcr.microsoft.com/devcontainers/javascript-node:20", /* LTS */
      "postCreateCommand": "npm ci // not a comment, a string",
      "features": {"a": 1,},
    }"""
    assert parse_jsonc(text) == {
        "image": "mcr.microsoft.com/devcontainers/javascript-node:20",
        "postCreateCommand": "npm ci // not a comment, a string",
        "features": {"a": 1},
    }


@pytest.mark.parametrize(
    ("command", "setup"),
    [
        ('"npm ci"', "npm ci"),
        ('["npm", "run", "build step"]', "npm run 'build step'"),
        (
            '{"server": "npm ci", "docs": ["pip", "install", "-r", "docs.txt"]}',
            "(npm ci) && (pip install -r docs.txt)",
        ),
        ('""', None),
        ("42", None),
    ],
)
def test_post_create_command_in_each_form(command: str, setup: str | None) -> None:
    files = {".devcontainer/devcontainer.json": f'{{"postCreateCommand": {command}}}'}
    found = devcontainer(list(files), lambda p: files[p].encode())
    assert found is not None and found.setup == setup and found.image is None


def test_the_dev_container_comes_before_detection() -> None:
    files = {
        ".devcontainer.json": (
            '{"image": "node:22", "postCreateCommand": "npm ci && npm run build"}'
        ),
        "package.json": '{"scripts": {"test": "node --test"}}',
    }
    config = detect(list(files), lambda p: files[p].encode() if p in files else None)
    assert config.devcontainer_image == "node:22"
    assert config.setup == "npm ci && npm run build"
    assert config.test == "npm test"


def test_an_unreadable_dev_container_is_ignored() -> None:
    files = {".devcontainer/devcontainer.json": "{ not json", "go.mod": "module x\n"}
    assert devcontainer(list(files), lambda p: files[p].encode()) is None
    config = detect(list(files), lambda p: files[p].encode() if p in files else None)
    assert config.setup is not None and config.setup.startswith("go mod download")
    assert config.devcontainer_image is None
