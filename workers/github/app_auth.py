"""GitHub App authentication: App id and private key -> JWT -> installation token.

Lives in the worker only. Tokens are narrowed to one repository and to the permissions a
step needs, and githubkit caches each one until a minute before it expires.

Every client names qwenfix in its User-Agent, gives up on a silent server after a timeout,
and never applies githubkit's own retry policy. There is one policy,
workers/runtime/retry.py, applied in one place per path: a task Celery retries whole (the
acknowledgement, the tick) gets clients that do not retry at all, so retries do not
multiply underneath each other; the run task, which is never retried (that would repeat
an agent run), gets clients that apply the same policy to each call (`with_call_retry`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, BaseAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException
from githubkit.retry import RetryDecisionFunc, RetryOption
from pydantic import BaseModel, SecretStr

from workers.engine.local_forge import Identity
from workers.github.user_agent import USER_AGENT

# What each step of a job may do with its token: never more.
ACKNOWLEDGE_PERMISSIONS = {"issues": "write", "pull_requests": "write", "metadata": "read"}
RUN_PERMISSIONS = {
    "contents": "read",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}
PUSH_PERMISSIONS = {"contents": "write", "metadata": "read"}
READ_PERMISSIONS = {"contents": "read", "metadata": "read"}
WORKFLOW_PUSH_PERMISSIONS = PUSH_PERMISSIONS | {"workflows": "write"}
"""A push that changes .github/workflows/ (GitHub refuses it without `workflows`): only
for a repository whose config sets `allow_workflow_changes: true`."""

# Connecting should be quick; a slow answer (a large list page) may take longer.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

A = TypeVar("A", bound=BaseAuthStrategy)

CallRetry = Callable[[BaseException, int], float | None]
"""A retry policy: seconds to wait before attempt `n + 1` after an error, None to give up."""
CALL_ATTEMPTS = 4


def _decision(policy: CallRetry, attempts: int) -> RetryDecisionFunc:
    def decide(exc: GitHubException, retry_count: int) -> RetryOption:
        delay = policy(exc, retry_count) if retry_count + 1 < attempts else None
        if delay is None:
            return RetryOption(False)
        return RetryOption(True, timedelta(seconds=delay))

    return decide


class AppCredentialsError(Exception):
    """The App id or key is missing or unreadable; the message says which setting."""


class AppCredentials(BaseModel):
    app_id: int
    private_key: SecretStr
    api_url: str = "https://api.github.com"

    @classmethod
    def load(
        cls,
        *,
        app_id: int | None,
        private_key: SecretStr | None,
        private_key_file: Path | None,
        api_url: str,
    ) -> AppCredentials:
        if app_id is None:
            raise AppCredentialsError("QWENFIX_GITHUB_APP_ID is required")
        if private_key is not None and private_key.get_secret_value().strip():
            pem = private_key.get_secret_value()
        elif private_key_file is not None:
            try:
                pem = private_key_file.read_text()
            except OSError as exc:
                raise AppCredentialsError(
                    f"QWENFIX_GITHUB_PRIVATE_KEY_FILE {private_key_file}: {exc.strerror}"
                ) from exc
        else:
            raise AppCredentialsError(
                "QWENFIX_GITHUB_PRIVATE_KEY or QWENFIX_GITHUB_PRIVATE_KEY_FILE is required"
            )
        if "PRIVATE KEY-----" not in pem:
            raise AppCredentialsError("the GitHub App private key is not a PEM key")
        return cls(app_id=app_id, private_key=SecretStr(pem), api_url=api_url)


class GitHubApp:
    """Build once per worker process: it owns the cache of JWTs and installation tokens."""

    def __init__(self, credentials: AppCredentials) -> None:
        self.credentials = credentials
        self._cache = MemCacheStrategy()
        self._identities: dict[str, Identity] = {}
        self._identity_lock = threading.Lock()
        self._retry: RetryDecisionFunc | None = None

    def with_call_retry(self, policy: CallRetry, attempts: int = CALL_ATTEMPTS) -> GitHubApp:
        """The same App (its tokens and bot identity shared), whose clients retry each
        failed call as `policy` says, at most `attempts` tries in all."""
        view = GitHubApp(self.credentials)
        view._cache, view._identities, view._identity_lock = (
            self._cache,
            self._identities,
            self._identity_lock,
        )
        view._retry = _decision(policy, attempts)
        return view

    def _client(self, strategy: A) -> GitHub[A]:
        return GitHub(
            strategy,
            base_url=self.credentials.api_url,
            user_agent=USER_AGENT,
            timeout=TIMEOUT,
            auto_retry=self._retry or False,
            cache_strategy=self._cache,
        )

    def as_app(self) -> GitHub[AppAuthStrategy]:
        return self._client(
            AppAuthStrategy(
                self.credentials.app_id, self.credentials.private_key.get_secret_value()
            )
        )

    def for_repository(
        self, installation_id: int, repo: str, permissions: dict[str, str]
    ) -> GitHub[AppInstallationAuthStrategy]:
        """A client whose token reaches only `repo`, with only `permissions`."""
        strategy = AppInstallationAuthStrategy(
            self.credentials.app_id,
            self.credentials.private_key.get_secret_value(),
            installation_id,
            repositories=[repo.split("/", 1)[1]],
            permissions=permissions,  # type: ignore[arg-type]
        )
        return self._client(strategy)

    def installation_token(
        self, installation_id: int, repo: str, permissions: dict[str, str]
    ) -> SecretStr:
        """A raw token for git over HTTPS, for one repository. Never enters a sandbox."""
        github = self.as_app()  # keep a reference: githubkit's namespaces hold it weakly
        create: Any = github.rest.apps.create_installation_access_token
        data = create(
            installation_id, repositories=[repo.split("/", 1)[1]], permissions=permissions
        ).parsed_data
        return SecretStr(data.token)

    def bot_identity(self, installation_id: int, repo: str, login: str) -> Identity:
        """The author and committer of qwenfix's commits: the App's bot user, as GitHub
        attributes it (`<user id>+<login>@users.noreply.github.com`; the bot user's id is
        not the App's). Asked of GitHub once per worker process, with a token of any
        installation: the bot user is the same for all."""
        with self._identity_lock:
            known = self._identities.get(login)
            if known is None:
                github = self.for_repository(installation_id, repo, {"metadata": "read"})
                user = github.rest.users.get_by_username(login).parsed_data
                known = Identity(
                    name=login,
                    email=f"{user.id}+{login}@users.noreply.github.com",
                    # Before qwenfix used the bot user's id it used the App's: branches
                    # of attempts made then are still its own.
                    former_emails=(f"{self.credentials.app_id}+{login}@users.noreply.github.com",),
                )
                self._identities[login] = known
            return known
