"""Schedules: `maintenance:` configs, and the scheduler tick against real SQLite, the fake
GitHub over HTTP (config read through the contents API) and a webhook push. (Cron itself:
tests/unit/test_cron.py.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.contract.db import make_engine, migrate
from bot.contract.job import Record
from bot.contract.schedules import ScheduleStore
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer
from bot.receiver.routing import ConfigChanged, Ignored, route
from bot.settings import BotSettings
from tests.fakes.github import FakeGitHub
from tests.helpers import git, make_repo
from workers.engine.maintenance_tasks import MaintenanceTask, find_task
from workers.engine.repo_config import RepoConfigError, parse_repo_config
from workers.github.app_auth import AppCredentials, GitHubApp
from workers.jobs.config_source import FoundConfig
from workers.runtime.tasks import read_config
from workers.runtime.tick import TickReport, delivery_id, tick

NOW = datetime(2026, 11, 30, 4, 0, 30, tzinfo=UTC)  # a Monday, 04:00:30 UTC


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "maintenance:\n  - task: fix-failing-tests\n    schedule: '0 25 * * *'\n",
            "maintenance.0.schedule: .*bad hour field",
        ),
        (
            "maintenance:\n  - task: lint-fix\n    schedule: '0 0 31 2 *'\n",
            "maintenance.0.schedule: .*'0 0 31 2 \\*' never fires",
        ),
        (
            "maintenance:\n  - task: custom\n    schedule: '@daily'\n",
            "a custom task needs a prompt",
        ),
        (
            "maintenance:\n  - task: lint-fix\n  - task: lint-fix\n",
            "two maintenance tasks are called 'lint-fix'",
        ),
        ("maintenance:\n  - task: make-coffee\n", "maintenance.0.task"),
        ("maintenance:\n  - task: lint-fix\n    name: Lint Fix!\n", "is not a task name"),
        ("maintenance: {task: lint-fix}\n", "maintenance: Input should be a valid list"),
    ],
)
def test_bad_maintenance_config_says_what_to_change(text: str, problem: str) -> None:
    with pytest.raises(RepoConfigError, match=problem):
        parse_repo_config(text.encode())


def test_built_in_tasks_run_unconfigured_but_custom_needs_a_prompt() -> None:
    configured = [MaintenanceTask(task="custom", name="docs", prompt="Update the docs.")]
    assert find_task(configured, "docs") == configured[0]
    found = find_task(configured, "lint-fix")
    assert (
        found is not None
        and found.schedule is None
        and found.branch == "qwenfix/maintenance/lint-fix"
    )
    assert find_task(configured, "custom") is None
    assert find_task(configured, "nope") is None


# -- the tick --------------------------------------------------------------------------

CONFIGS = {
    "octo-org/nightly": "test: pytest\nmaintenance:\n"
    "  - task: fix-failing-tests\n    schedule: '0 4 * * *'\n"
    "  - task: update-dependencies\n    schedule: '0 5 * * 1'\n"
    "  - task: custom\n    name: changelog\n    prompt: Tidy it.\n"
    "    schedule: '*/30 * * * *'\n",
    "octo-org/broken": "maintenance:\n  - task: fix-failing-tests\n    schedule: '0 99 * * *'\n",
    "octo-org/defaults": "test: pytest\n",
    "octo-org/opted-out": "maintenance: []\n",
}


class World:
    def __init__(self, tmp: Path, fake: FakeGitHub, app: GitHubApp) -> None:
        self.tmp, self.fake, self.app = tmp, fake, app
        engine = make_engine(f"sqlite:///{tmp / 'jobs.db'}")
        migrate(engine)
        self.jobs, self.schedules = JobStore(engine), ScheduleStore(engine)
        self.queued: list[int] = []
        self.reads: list[str] = []

    def read(self, repo: str, installation: int) -> FoundConfig | None:
        self.reads.append(repo)
        return read_config(self.app, repo, installation)

    def tick(self, now: datetime, defaults: list[MaintenanceTask] | None = None) -> TickReport:
        return tick(
            now,
            jobs=self.jobs,
            schedules=self.schedules,
            read_config=self.read,
            enqueue=self.queued.append,
            defaults=defaults or [],
            catchup_s=3600,
            refresh_s=3600,
        )

    def due(self) -> list[tuple[str, str | None, str]]:
        return sorted((j.repo, j.task, j.event) for j in self.jobs.find())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    fake = FakeGitHub()
    for name, config in CONFIGS.items():
        source = make_repo(tmp_path / name, {".qwenfix.yml": config, "a.py": "x = 1\n"})
        fake.add_repo(name, installation_id=42, source=source)
    with ThreadedServer(fake.asgi()) as server:
        fake.base_url = server.url
        app = GitHubApp(
            AppCredentials.load(
                app_id=fake.app_id,
                private_key=SecretStr(fake.private_key_pem),
                private_key_file=None,
                api_url=server.url,
            )
        )
        w = World(tmp_path, fake, app)
        w.jobs.record_installation(
            Record(
                installation_id=42,
                account="octo-org",
                action="created",
                added=sorted(CONFIGS),
                removed=[],
            )
        )
        yield w
    fake.close()


def test_tick_queues_what_is_due_and_records_a_bad_config(world: World) -> None:
    defaults = [MaintenanceTask(task="lint-fix", schedule="0 4 * * *")]
    report = world.tick(NOW, defaults=defaults)
    # 04:00 on a Monday: the nightly fix, the half-hourly custom task, and the operator's
    # default for the repository that has no maintenance: key; 05:00 is not yet due.
    assert world.due() == [
        ("octo-org/defaults", "lint-fix", "schedule"),
        ("octo-org/nightly", "changelog", "schedule"),
        ("octo-org/nightly", "fix-failing-tests", "schedule"),
    ]
    assert sorted(world.queued) == sorted(report.queued) and len(report.queued) == 3
    assert list(report.errors) == ["octo-org/broken"]
    assert "bad hour field '99'" in report.errors["octo-org/broken"]
    broken = world.schedules.get("octo-org/broken")
    assert broken is not None and "maintenance.0.schedule" in (broken.error or "")
    assert world.schedules.get("octo-org/opted-out").tasks == "[]"  # type: ignore[union-attr]
    # The same window again (a second beat, a redelivered tick): nothing new.
    again = world.tick(NOW, defaults=defaults)
    assert len(world.jobs.find()) == 3
    assert again.queued == [] and len(world.queued) == 3
    assert world.reads.count("octo-org/broken") == 1  # an error is not re-read each tick


def test_ticks_over_the_same_window_create_each_job_once(world: World) -> None:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            world.tick(NOW)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert world.due() == [
        ("octo-org/nightly", "changelog", "schedule"),
        ("octo-org/nightly", "fix-failing-tests", "schedule"),
    ]
    ids = {j.delivery_id for j in world.jobs.find()}
    assert delivery_id("octo-org/nightly", "fix-failing-tests", at("2026-11-30T04:00")) in ids


def test_missed_runs_are_made_up_once_within_the_catchup_window(world: World) -> None:
    def made(task: str, moment: str) -> bool:
        wanted = delivery_id("octo-org/nightly", task, at(moment))
        return any(j.delivery_id == wanted for j in world.jobs.find())

    world.tick(at("2026-11-30T03:10"))  # the last hour: the 03:00 run of the half-hourly
    assert made("changelog", "2026-11-30T03:00")
    # Beat was down from 03:10 to 04:00:30: the 03:30 and 04:00 runs of the half-hourly
    # task collapse into one run (the latest); the nightly one runs.
    world.tick(NOW)
    assert made("changelog", "2026-11-30T04:00") and made("fix-failing-tests", "2026-11-30T04:00")
    assert not made("changelog", "2026-11-30T03:30")
    # Down for a day: only the last hour is made up (05:00 on Tuesday: the half-hourly).
    world.tick(at("2026-12-01T05:10"))
    assert made("changelog", "2026-12-01T05:00")
    assert sorted(j.task or "" for j in world.jobs.find() if j.repo == "octo-org/nightly") == [
        "changelog",
        "changelog",
        "changelog",
        "fix-failing-tests",
    ]


def test_schedules_are_read_again_after_a_push_changes_the_config(world: World) -> None:
    world.tick(NOW)
    reads = len(world.reads)
    world.tick(NOW + timedelta(minutes=1))
    assert len(world.reads) == reads  # fresh: not read again

    bare = world.fake.repos["octo-org/broken"].bare
    assert bare is not None
    work = world.tmp / "broken-work"
    git(world.tmp, "clone", "-q", str(bare), str(work))
    (work / ".qwenfix.yml").write_text(
        "maintenance:\n  - task: fix-failing-tests\n    schedule: '30 4 * * *'\n"
    )
    git(work, "commit", "-qam", "fix the schedule")
    git(work, "push", "-q", "origin", "HEAD:main")
    settings = BotSettings(webhook_secret=["s"], api_token="t")  # type: ignore[arg-type]
    push = {
        "ref": "refs/heads/main",
        "repository": {"full_name": "octo-org/broken", "default_branch": "main"},
        "commits": [{"added": [], "removed": [], "modified": [".qwenfix.yml"]}],
        "sender": {"login": "octocat"},
    }
    decision = route("push", push, settings)
    assert decision == ConfigChanged(repo="octo-org/broken")
    assert isinstance(route("push", {**push, "ref": "refs/heads/feature"}, settings), Ignored)
    assert isinstance(
        route("push", {**push, "commits": [{"modified": ["a.py"]}]}, settings), Ignored
    )
    nested = {**push, "commits": [{"added": [".github/qwenfix.yml"]}]}
    assert route("push", nested, settings) == ConfigChanged(repo="octo-org/broken")
    world.schedules.mark_stale("octo-org/broken")

    report = world.tick(at("2026-11-30T04:30:10"))
    assert world.reads[reads:] == ["octo-org/broken"]
    assert "octo-org/broken" not in report.errors
    row = world.schedules.get("octo-org/broken")
    assert row is not None and row.error is None and not row.stale
    assert json.loads(row.tasks or "[]") == [
        {"task": "fix-failing-tests", "schedule": "30 4 * * *"}
    ]
    assert ("octo-org/broken", "fix-failing-tests", "schedule") in world.due()


def test_github_trouble_for_one_repository_leaves_the_others_alone(world: World) -> None:
    # (a 404, as for a repository transferred away; 5xx are retried by githubkit first)
    world.fake.fail_next("GET", r"/repos/octo-org/nightly$", 404, message="Not Found")
    report = world.tick(NOW)
    assert report.errors.keys() == {"octo-org/broken"}
    assert world.due() == []  # nightly could not be read: it is tried again next tick
    assert world.schedules.get("octo-org/nightly") is None
    world.tick(NOW + timedelta(seconds=40))  # and caught up: its 04:00 run is queued
    assert ("octo-org/nightly", "fix-failing-tests", "schedule") in world.due()


def test_unknown_installation_state_is_not_scheduled(world: World) -> None:
    world.jobs.record_installation(
        Record(installation_id=42, account="octo-org", action="suspend", added=[], removed=[])
    )
    assert world.tick(NOW).queued == []
