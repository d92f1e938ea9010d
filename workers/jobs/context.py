"""One context per job (probot's idea): the job, its repository on GitHub, the settings,
the bot's identity, status replies, checkouts and the fix engine, built once when the job
starts, so that a handler is only what its kind does."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pydantic import SecretStr

from bot.contract.db import Job
from bot.contract.job import JobStatus, StopRequest
from bot.contract.store import JobStore
from sandbox import SandboxBackend
from workers.engine.agent.trajectory import Sink
from workers.engine.fix import FixRequest, FixResult, run_fix
from workers.engine.git import git_text
from workers.engine.llm.types import Model
from workers.engine.local_forge import Identity, LocalForge
from workers.github.app_auth import PUSH_PERMISSIONS, RUN_PERMISSIONS, GitHubApp
from workers.github.forge import GitHubForge, PullInfo
from workers.github.remote import clone
from workers.jobs.config_source import defaults_for
from workers.jobs.texts import dashboard_link
from workers.settings import WorkerSettings


class Outcome(NamedTuple):
    """How a job ended, and the reason the dashboard and the jobs API show."""

    status: JobStatus
    reason: str


class JobStopped(Exception):
    """Someone asked the job to stop (or closed its issue or pull request): it ends
    `stopped`, whatever it was doing."""

    def __init__(self, request: StopRequest) -> None:
        super().__init__(request.why)
        self.request = request


class JobUnusable(Exception):
    """The job lacks what its kind needs (an installation, an issue, a task)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Checkout:
    """A clone on the worker's disk, and the token its pushes use."""

    path: Path
    token: SecretStr

    def head(self, rev: str = "HEAD") -> str:
        return git_text(self.path, "rev-parse", rev)


@dataclass
class JobContext:
    job: Job
    installation: int
    settings: WorkerSettings
    app: GitHubApp
    model: Model
    backend: SandboxBackend
    forge: GitHubForge
    identity: Identity
    jobs: JobStore
    """For what earlier jobs did (attempt counts, daily caps)."""
    sink: Sink | None = None

    @classmethod
    def open(
        cls,
        job: Job,
        *,
        app: GitHubApp,
        model: Model,
        backend: SandboxBackend,
        settings: WorkerSettings,
        jobs: JobStore,
        sink: Sink | None = None,
        permissions: dict[str, str] | None = None,
    ) -> JobContext:
        """Raises JobUnusable when the job names no installation."""
        if job.installation_id is None:
            raise JobUnusable("the job names no installation")
        scoped = RUN_PERMISSIONS | (permissions or {})
        return cls(
            job=job,
            installation=job.installation_id,
            settings=settings,
            app=app,
            model=model,
            backend=backend,
            jobs=jobs,
            sink=sink,
            forge=GitHubForge(app.for_repository(job.installation_id, job.repo, scoped), job.repo),
            identity=app.bot_identity(job.installation_id, job.repo, settings.bot_login),
        )

    @property
    def bot_login(self) -> str:
        return self.settings.bot_login

    def is_ours(self, pull: PullInfo) -> bool:
        return pull.author.lower() == self.bot_login.lower()

    def tell(self, number: int | None, text: str) -> None:
        """The one status comment on an issue or pull request; nothing without one."""
        if number is not None:
            link = dashboard_link(self.job.id, self.settings.public_url)
            self.forge.upsert_status(number, text + link, self.bot_login)

    def stop_request(self) -> StopRequest | None:
        """Who asked this job to stop, if anyone (read fresh: it changes while it runs)."""
        return self.jobs.stop_request(self.job.id)

    def check_stopped(self) -> None:
        """Raises JobStopped when the job was asked to stop."""
        if (request := self.stop_request()) is not None:
            raise JobStopped(request)

    def token(self, permissions: dict[str, str] = PUSH_PERMISSIONS) -> SecretStr:
        return self.app.installation_token(self.installation, self.job.repo, permissions)

    @contextmanager
    def checkout(
        self,
        url: str,
        branch: str,
        *,
        prefix: str = "qwenfix-job-",
        permissions: dict[str, str] = PUSH_PERMISSIONS,
    ) -> Iterator[Checkout]:
        """A clone of `branch`, removed afterwards, with a token for `permissions`."""
        token = self.token(permissions)
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            path = Path(tmp) / "repo"
            clone(url, branch, path, token)
            yield Checkout(path=path, token=token)

    def fix(self, request: FixRequest, checkout: Checkout) -> FixResult:
        """The fix engine on the checkout; a resolved change is committed on a local branch.
        Raises JobStopped when the job is asked to stop before or while it runs."""
        self.check_stopped()
        defaults = defaults_for(self.app, self.installation, self.job.repo)
        result = run_fix(
            request.model_copy(update={"config_defaults": defaults}),
            model=self.model,
            backend=self.backend,
            settings=self.settings,
            forge=LocalForge(checkout.path, self.identity),
            model_name=self.settings.llm_model,
            sink=self.sink,
            cancelled=self.stop_request,
        )
        if result.status == "stopped":
            raise JobStopped(self.stop_request() or StopRequest(by="", why=result.reason))
        return result
