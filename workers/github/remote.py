"""git against a repository on GitHub: clone, fetch and push with an installation token
that travels in an environment-configured header (never in a URL, a command line or
.git/config, and never into a sandbox, which gets a copy of the tree)."""

from __future__ import annotations

import base64
from pathlib import Path

from pydantic import SecretStr

from workers.engine.git import git, git_text
from workers.engine.local_forge import Identity
from workers.github.user_agent import USER_AGENT

# A clone or push that stalls is ended by git itself after LOW_SPEED_TIME_S below
# LOW_SPEED_BYTES_S (curl's low-speed limit), and any network call by its time limit
# whatever it does: a server that accepts and never answers holds no job for long.
CLONE_TIMEOUT_S = 900.0
FETCH_TIMEOUT_S = 600.0
PUSH_TIMEOUT_S = 300.0
LOW_SPEED_BYTES_S = 1000
LOW_SPEED_TIME_S = 60


def network_env() -> dict[str, str]:
    return {
        "GIT_HTTP_LOW_SPEED_LIMIT": str(LOW_SPEED_BYTES_S),
        "GIT_HTTP_LOW_SPEED_TIME": str(LOW_SPEED_TIME_S),
        "GIT_HTTP_USER_AGENT": USER_AGENT,  # git's own requests name qwenfix as well
    }


class PushRefused(Exception):
    """The branch holds commits that are not qwenfix's: never overwrite them."""


def token_env(token: SecretStr | None) -> dict[str, str]:
    """What git needs in its environment to use `token`; nothing for anonymous access."""
    if token is None:
        return network_env()
    basic = base64.b64encode(f"x-access-token:{token.get_secret_value()}".encode()).decode()
    return {
        **network_env(),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def clone(
    url: str, branch: str, target: Path, token: SecretStr, *, timeout_s: float = CLONE_TIMEOUT_S
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    git(
        target.parent,
        "clone",
        "-q",
        "--filter=blob:none",
        # Tags on the branch come along (auto-followed): the sandbox's `git describe`,
        # and so the project's version, needs the nearest one.
        "--single-branch",
        "--branch",
        branch,
        url,
        str(target),
        env=token_env(token),
        timeout_s=timeout_s,
    )


def fetch(
    checkout: Path,
    source: str,
    branch: str,
    token: SecretStr | None,
    *,
    timeout_s: float = FETCH_TIMEOUT_S,
) -> str:
    """The commit at the tip of `branch` in `source` (a remote name or a URL)."""
    env = token_env(token)
    git(
        checkout,
        "fetch",
        "-q",
        "--filter=blob:none",
        source,
        f"refs/heads/{branch}",
        env=env,
        timeout_s=timeout_s,
    )
    return git_text(checkout, "rev-parse", "FETCH_HEAD")


def push_replacing(repo: Path, branch: str, token: SecretStr, identity: Identity) -> None:
    """Push `branch`, replacing an earlier qwenfix attempt but never anyone else's work."""
    env = token_env(token)
    remote = (
        git(repo, "ls-remote", "origin", f"refs/heads/{branch}", env=env, timeout_s=PUSH_TIMEOUT_S)
        .decode()
        .split()
    )
    lease = (
        f"--force-with-lease={branch}:{remote[0]}" if remote else f"--force-with-lease={branch}:"
    )
    if remote:
        git(
            repo,
            "fetch",
            "-q",
            "origin",
            f"refs/heads/{branch}",
            env=env,
            timeout_s=FETCH_TIMEOUT_S,
        )
        authors = git_text(repo, "log", "--format=%ae", "HEAD..FETCH_HEAD").split()
        ours = {identity.email, *identity.former_emails}
        others = sorted({a for a in authors if a not in ours})
        if others:
            raise PushRefused(f"the branch {branch} has commits by {', '.join(others)}")
    git(
        repo,
        "push",
        "-q",
        lease,
        "origin",
        f"refs/heads/{branch}:refs/heads/{branch}",
        env=env,
        timeout_s=PUSH_TIMEOUT_S,
    )


def push_fast_forward(repo: Path, commit: str, branch: str, token: SecretStr) -> None:
    """`commit` onto `branch` as a plain fast-forward: if anyone pushed meanwhile, git
    refuses, and nobody's work is forced over."""
    git(
        repo,
        "push",
        "-q",
        "origin",
        f"{commit}:refs/heads/{branch}",
        env=token_env(token),
        timeout_s=PUSH_TIMEOUT_S,
    )
