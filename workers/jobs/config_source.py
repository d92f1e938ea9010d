"""A repository's config file and its owner's defaults, read from GitHub by the worker
(the engine reads the repository's file from the checkout, and gets the defaults from
here: it asks GitHub nothing).

The defaults are the same file in the owner's `.github` repository, on its default branch.
That repository is read only when the App's installation reaches it; when it does not (or
it does not exist), there are simply no defaults."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from githubkit.exception import RequestFailed

from workers.engine.repo_config import CONFIG_FILES, ConfigDefaults
from workers.github.app_auth import READ_PERMISSIONS, GitHubApp
from workers.github.forge import GitHubForge

OWNER_REPO = ".github"
# GitHub's answers when the installation cannot reach the owner's `.github` repository:
# not there (404), not granted to this installation (a token for it is refused: 422), or
# not readable with the token (403).
UNREACHABLE = frozenset({403, 404, 422})


class FoundConfig(NamedTuple):
    """What a repository's configuration is made of, as read from its default branch."""

    path: str
    """The repository's config file (the first of CONFIG_FILES it has; the first when none)."""
    raw: bytes | None
    """Its content, None when the repository has none."""
    defaults: ConfigDefaults | None
    sha: str
    """Names what was read (the file's blob, and the defaults'): changes when either does."""


def owner_defaults(
    app: GitHubApp, installation: int, repo: str
) -> tuple[str, ConfigDefaults] | None:
    """(blob sha, defaults) from `<owner>/.github`, or None when there are none to read."""
    owner = repo.split("/", 1)[0]
    home = f"{owner}/{OWNER_REPO}"
    if repo.lower() == home.lower():
        return None  # the `.github` repository's own file is its config, not defaults
    forge = GitHubForge(app.for_repository(installation, home, READ_PERMISSIONS), home)
    try:
        found = forge.first_file(CONFIG_FILES, forge.repository().default_branch)
    except RequestFailed as exc:
        if exc.response.status_code in UNREACHABLE:
            return None
        raise
    if found is None:
        return None
    path, sha, raw = found
    return sha, ConfigDefaults(source=f"{home}:{path}", text=raw.decode("utf-8", "replace"))


def read_config(app: GitHubApp, repo: str, installation: int) -> FoundConfig | None:
    """The repository's config file and its owner's defaults on the default branches, or
    None when there is neither."""
    forge = GitHubForge(app.for_repository(installation, repo, READ_PERMISSIONS), repo)
    own = forge.first_file(CONFIG_FILES, forge.repository().default_branch)
    defaults = owner_defaults(app, installation, repo)
    if own is None and defaults is None:
        return None
    shas = [own[1] if own else "", defaults[0] if defaults else ""]
    return FoundConfig(
        path=own[0] if own else CONFIG_FILES[0],
        raw=own[2] if own else None,
        defaults=defaults[1] if defaults else None,
        sha=shas[0] if defaults is None else hashlib.sha1("\n".join(shas).encode()).hexdigest(),
    )


def defaults_for(app: GitHubApp, installation: int, repo: str) -> ConfigDefaults | None:
    """The owner's defaults for the engine, None when there are none."""
    found = owner_defaults(app, installation, repo)
    return found[1] if found is not None else None
