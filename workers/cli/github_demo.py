"""The demo on the real path: a comment on the fake GitHub becomes a pull request.

Runs the fake GitHub, the webhook receiver, a Celery worker process on the local Redis,
Docker sandboxes and the scripted model (or a real server named by QWENFIX_LLM_BASE_URL),
then comments `@qwenfix fix` on the example repository's issue and follows the job.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from pydantic import SecretStr

from bot.contract.db import make_engine, migrate
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer
from bot.receiver.app import Receiver, create_app
from bot.receiver.enqueue import RedisJobQueue
from bot.receiver.ledger import DeliveryLedger
from bot.receiver.metrics import ReceiverMetrics
from bot.settings import BotSettings
from tests.fakes.github import FakeGitHub
from tests.fakes.github.events import deliver, issue_comment_created
from tests.fakes.model_server import ScriptedModelServer
from workers.cli.demo import DEMO_REPO, make_demo_repository
from workers.engine.resources import resource_dir
from workers.settings import WorkerSettings

REPO = "demo-org/calculator"
MAINTAINER = "demo-maintainer"
DONE = frozenset(
    {
        "resolved",
        "unresolved",
        "unverified",
        "context_full",
        "error",
        "blocked",
        "refused",
        "failed",
        "skipped",
        "reviewed",
    }
)


def run_github_demo(echo: Callable[[str], None], timeout_s: float = 600) -> int:
    settings = WorkerSettings()
    broker_url = os.environ.get("QWENFIX_DEMO_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(broker_url).flushdb()  # the demo's own database
    except redis.exceptions.ConnectionError:
        echo(f"Redis does not answer at {broker_url}: run `make demo` (it starts Redis).")
        return 2
    work = Path(tempfile.mkdtemp(prefix="qwenfix-demo-"))
    examples = resource_dir("examples")
    title, _, body = (examples / f"{DEMO_REPO}.issue.md").read_text().partition("\n")
    fake = FakeGitHub(app_slug="qwenfix")
    fake.add_repo(
        REPO,
        installation_id=1,
        collaborators={MAINTAINER: "admin"},
        source=make_demo_repository(work / "source"),
    )
    fake.add_issue(REPO, 1, title.strip(), body.strip(), author=MAINTAINER)
    database = f"sqlite:///{work / 'qwenfix.db'}"
    engine = make_engine(database)
    migrate(engine)
    store = JobStore(engine)
    secret = secrets.token_hex(16)
    receiver = Receiver(
        settings=BotSettings(
            webhook_secret=[SecretStr(secret)],
            api_token=SecretStr(secrets.token_hex(16)),
            redis_url=broker_url,
            database_url=database,
        ),
        store=store,
        ledger=DeliveryLedger.from_url(broker_url, 3600),
        queue=RedisJobQueue.from_url(broker_url, settings.quick_queue),
        metrics=ReceiverMetrics(),
    )
    scripted = None
    if "QWENFIX_LLM_BASE_URL" in os.environ:
        model_url = settings.llm_base_url
        echo(f"model: {settings.llm_model} at {model_url} (real server)")
    else:
        scripted = ScriptedModelServer.from_file(examples / f"{DEMO_REPO}.script.json").start()
        model_url = scripted.base_url
        echo(
            f"model: scripted model at {model_url} "
            "(set QWENFIX_LLM_BASE_URL to use a real vLLM server)"
        )
    with ThreadedServer(fake.asgi()) as github, ThreadedServer(create_app(receiver)) as hook:
        fake.base_url = github.url
        env = {
            **os.environ,
            "QWENFIX_REDIS_URL": broker_url,
            "QWENFIX_DATABASE_URL": database,
            "QWENFIX_GITHUB_API_URL": github.url,
            "QWENFIX_GITHUB_APP_ID": str(fake.app_id),
            "QWENFIX_GITHUB_PRIVATE_KEY": fake.private_key_pem,
            "QWENFIX_LLM_BASE_URL": model_url,
        }
        log = work / "worker.log"
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.cli.main",
                "worker",
                "--queues",
                "quick,agent",
                "--concurrency",
                "2",
            ],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            echo(
                f"fake GitHub: {github.url}/{REPO}   receiver: {hook.url}/webhook   "
                f"worker log: {log}"
            )
            comment = fake.add_comment(REPO, 1, "@qwenfix fix", MAINTAINER)
            echo(f'@{MAINTAINER} comments on {REPO}#1 "{title.strip()}": @qwenfix fix')
            answer = deliver(
                f"{hook.url}/webhook",
                secret,
                "issue_comment",
                issue_comment_created(fake, REPO, 1, comment),
            )
            echo(f"receiver: {answer.status_code} {answer.json()}")
            job_id = int(answer.json()["job_id"])
            status = _follow(fake, store, job_id, echo, timeout_s)
        finally:
            worker.terminate()
            worker.wait(30)
            if scripted is not None:
                scripted.stop()
        pulls = fake.open_pulls(REPO)
        if status != "resolved" or not pulls:
            echo(f"\nThe job ended {status}; see {log}")
            return 1
        pull = pulls[0]
        bare = fake.repos[REPO].bare
        diff = subprocess.run(
            ["git", "-C", str(bare), "diff", f"{pull['base']}...{pull['head']}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        echo(f"\nPull request: {github.url}/{REPO}/pull/{pull['number']}")
        echo(
            f"--- #{pull['number']} {pull['title']} ({pull['head']} -> {pull['base']}, "
            f"review requested from {', '.join(pull['reviewers']) or 'nobody'}) ---"
        )
        echo(pull["body"])
        echo("--- diff ---")
        echo(diff)
        fake.close()
        return 0


def _follow(
    fake: FakeGitHub, store: JobStore, job_id: int, echo: Callable[[str], None], timeout_s: float
) -> str:
    """Print the job's status and the issue's status comment as they change."""
    seen_status, seen_comment = "", ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = store.get(job_id)
        status = job.status if job else "missing"
        if status != seen_status:
            echo(f"job {job_id}: {status}")
            seen_status = status
        comments = [
            c["body"] for c in fake.issue_comments(REPO, 1) if c["author"] == fake.bot_login
        ]
        if comments and comments[-1] != seen_comment:
            seen_comment = comments[-1]
            text = seen_comment.replace("<!-- qwenfix:status -->", "").strip()
            echo(f"status comment: {text.splitlines()[0]}")
        if status in DONE:
            return status
        time.sleep(0.3)
    return "timed out"
