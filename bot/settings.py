"""Receiver settings, read from the environment (prefix QWENFIX_) in this one place.

The receiver holds only what it needs to verify, decide and enqueue: the webhook
secret(s), the broker, the database and the operator token. No App key, no tokens.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QWENFIX_", extra="ignore")

    log_format: Literal["text", "json"] = "text"
    webhook_secret: Annotated[list[SecretStr], NoDecode]
    """One secret, or several separated by commas while rotating."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///qwenfix.db"
    api_token: SecretStr
    """Bearer token for /api/*."""

    trigger: str = "qwenfix"
    """The word after @ (`@qwenfix fix`) and the label that triggers a fix."""
    bot_login: str = "qwenfix[bot]"
    """The App's bot user: its pull requests are the ones it follows up on."""
    reviewer: str = "qwenfix"
    """Login or team slug whose review request means `review`."""
    allow_users: CommaList = Field(default_factory=list)
    deny_users: CommaList = Field(default_factory=list)
    allow_repos: CommaList = Field(default_factory=list)
    deny_repos: CommaList = Field(default_factory=list)
    max_body_bytes: int = 25 * 1024 * 1024
    dedup_ttl_s: int = 3 * 24 * 3600
    dependency_timeout_s: float = 5.0
    """How long a delivery may wait for Redis and the database before it is answered 503."""
    claim_ttl_s: int = Field(default=300, ge=1)
    """How long a claimed delivery without a job stands before a redelivery may claim it
    again (its receiver died half-way, or Redis restarted). Longer than any request."""
    agent_queue: str = "agent"
    quick_queue: str = "quick"
    migrate_on_start: bool = True
    """`qwenfix serve` brings the schema to the newest migration as it starts: convenient
    for one receiver on SQLite. Deployments set it false and run `qwenfix migrate` once
    before any receiver starts, so that two replicas never migrate at the same time."""

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _secrets(cls, value: object) -> object:
        return _split(value)

    @field_validator("allow_users", "deny_users", "allow_repos", "deny_repos", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("webhook_secret")
    @classmethod
    def _not_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        if not value:
            raise ValueError("at least one webhook secret is required")
        return value

    @model_validator(mode="after")
    def _claims_outlast_requests(self) -> BotSettings:
        if self.claim_ttl_s <= self.dependency_timeout_s:
            raise ValueError("QWENFIX_CLAIM_TTL_S must be longer than QWENFIX_DEPENDENCY_TIMEOUT_S")
        return self


class SettingsError(Exception):
    """Start-up cannot go on; the message names the variables to set."""


def load_bot_settings() -> BotSettings:
    try:
        return BotSettings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "QWENFIX_" + str(error["loc"][0]).upper() if error["loc"] else "?"
            what = "is required" if error["type"] == "missing" else error["msg"]
            problems.append(f"{name} {what}")
        raise SettingsError("; ".join(problems)) from exc
