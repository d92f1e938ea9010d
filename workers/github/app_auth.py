"""GitHub App authentication: App id and private key -> JWT -> installation token.

Lives in the worker only. Tokens are narrowed to one repository and to the permissions a
step needs, and githubkit caches each one until a minute before it expires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from pydantic import BaseModel, SecretStr

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

    def as_app(self) -> GitHub[AppAuthStrategy]:
        return GitHub(
            AppAuthStrategy(
                self.credentials.app_id, self.credentials.private_key.get_secret_value()
            ),
            base_url=self.credentials.api_url,
            timeout=30,
            cache_strategy=self._cache,
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
        return GitHub(
            strategy, base_url=self.credentials.api_url, timeout=30, cache_strategy=self._cache
        )

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
