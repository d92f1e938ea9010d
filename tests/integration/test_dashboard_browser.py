"""The operator's view, in a real browser (Debian's Chromium, driven by Playwright): a job
followed live from the comment to the pull request, its trajectory and its diff; plus the
worker's metrics, JSON logs and the `qwenfix jobs` / `qwenfix job` commands on the same
run. Every part is real but the model (scripted) and GitHub (the fake)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.embedded import ThreadedServer, free_port
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.fakes.github import FakeGitHub
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import (
    BUGGY_REPO,
    call,
    deliver,
    make_receiver,
    make_repo,
    step,
    stop_process,
    worker_env,
)

REDIS_DB = 6
SECRET = "dashboard-secret"
REPO = "octo-org/hello-world"
CHROMIUM = "/usr/bin/chromium"
QWENFIX = str(Path(sys.executable).parent / "qwenfix")
STEPS = [
    step(call("view", path="mathlib.py"), content="Let me look at double()."),
    step(call("bash", command="seq 1 40")),  # a long tool output, collapsed in the viewer
    step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2")),
    step(call("run_tests")),
    step(call("submit", summary="double() added one too many.", title="Fix double()")),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Site:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis_url, _ = fresh_redis(REDIS_DB)
        self.fake = FakeGitHub()
        self.fake.add_repo(
            REPO,
            installation_id=42,
            collaborators={"octocat": "admin"},
            source=make_repo(tmp / "source", BUGGY_REPO),
        )
        self.fake.add_issue(REPO, 7, "double() is wrong", "double(2) gives 5.")
        self.database = f"sqlite:///{tmp / 'jobs.db'}"
        self.store, receiver = make_receiver(self.database, self.redis_url, SECRET)
        self.model = ScriptedModelServer({"steps": STEPS}).start()
        self.github = ThreadedServer(self.fake.asgi()).__enter__()
        self.fake.base_url = self.github.url
        from bot.receiver.app import create_app

        self.hook = ThreadedServer(create_app(receiver)).__enter__()
        self.metrics_port = free_port()
        self.env = worker_env(
            tmp,
            redis_url=self.redis_url,
            database=self.database,
            fake=self.fake,
            github_url=self.github.url,
            model_url=self.model.base_url,
            log_format="json",
            metrics_port=str(self.metrics_port),
        )
        with open(tmp / "worker.log", "a") as log:  # the child holds its own copy of it
            self.worker = subprocess.Popen(
                [QWENFIX, "worker", "--queues", "quick,agent", "--concurrency", "2"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def close(self) -> None:
        stop_process(self.worker)
        self.hook.__exit__()
        self.github.__exit__()
        self.model.stop()
        self.fake.close()

    def comment(self, body: str, delivery: str) -> httpx.Response:
        payload = gh.comment_created(body)
        payload["comment"]["id"] = self.fake.add_comment(REPO, 7, body, "octocat")
        return deliver(self.hook.url, SECRET, "issue_comment", payload, delivery)

    def log_lines(self) -> list[str]:
        return (self.tmp / "worker.log").read_text().splitlines()


@pytest.fixture
def site(tmp_path: Path, docker_client: Any) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def shots() -> Path | None:
    """Where to keep screenshots of each page (`make screenshots` sets it to docs/)."""
    target = os.environ.get("QWENFIX_SCREENSHOTS")
    return Path(target) if target else None


def snap(page: Any, name: str) -> None:
    folder = shots()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_an_operator_follows_a_job_from_comment_to_pull_request(site: Site, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    base = site.hook.url

    # The dashboard is behind the operator token.
    page.goto(f"{base}/jobs")
    assert page.url.startswith(f"{base}/login")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "That is not the operator token." in page.inner_text("main")
    snap(page, "login")
    page.fill("input[name=token]", "t")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/jobs")
    assert "No jobs" in page.inner_text("#rows")

    # The job appears and moves on in the open list, without a reload.
    answer = site.comment("@qwenfix fix please", "delivery-dash")
    job_id = answer.json()["job_id"]
    row = page.locator(f"tr.job[data-id='{job_id}']")
    row.wait_for(timeout=15_000)
    page.wait_for_function(
        f"!['queued', 'acknowledged', 'running'].includes(document.querySelector("
        f"\"tr.job[data-id='{job_id}'] .status\").textContent)",
        timeout=180_000,
    )
    assert row.locator(".status").inner_text() == "resolved", (
        site.store.get(job_id),
        site.log_lines()[-20:],
    )
    assert "fix" in row.inner_text() and "issue_comment by @octocat" in row.inner_text()
    snap(page, "jobs")

    # Filters.
    page.select_option("select[name=kind]", "review")
    page.click("form.filters button")
    assert "No jobs match these filters" in page.inner_text("#rows")
    page.select_option("select[name=kind]", "fix")
    page.select_option("select[name=status]", "resolved")
    page.click("form.filters button")
    assert page.locator("tr.job").count() == 1

    # The job: trigger, status, pull request, tests, tokens, time, timeline.
    page.click(f"tr.job[data-id='{job_id}'] a")
    page.wait_for_url(f"{base}/jobs/{job_id}")
    assert page.inner_text("#job-status") == "resolved"
    [pull] = site.fake.open_pulls(REPO)
    assert page.get_attribute("#pull-link", "href").endswith(f"/pull/{pull['number']}")
    assert page.inner_text("#tests") == "failed (exit 1): 2 failed → passed: 2 passed"
    tokens = page.inner_text("#tokens")
    assert re.search(r"\d+ prompt \(\d+ from the prefix cache, \d+%\)", tokens)
    assert "5 turn(s)" in tokens
    assert re.search(r"s wall · [\d.]+ s model · [\d.]+ s sandbox", page.inner_text("#time"))
    timeline = page.inner_text("#timeline")
    for stage in (
        "queued",
        "acknowledged",
        "running",
        "started",
        "tests before",
        "packed the repository",
        "turn 1",
        "verified by the harness",
        "resolved",
    ):
        assert stage in timeline, stage
    snap(page, "job")

    # The trajectory, turn by turn; a long tool output is collapsed until opened.
    page.click("text=Trajectory")
    page.wait_for_url(f"{base}/jobs/{job_id}/trajectory")
    assert page.locator("section.turn").count() == 5
    first = page.locator("#turn-1")
    assert "Let me look at double()." in first.inner_text()
    assert '"path": "mathlib.py"' in first.locator("pre.arguments").inner_text()
    more = page.locator("#turn-2 details.more")
    assert re.fullmatch(r"3\d more line\(s\)", more.inner_text().strip())
    assert not page.is_visible("#turn-2 details.more pre")
    more.locator("summary").click()
    assert page.is_visible("#turn-2 details.more pre")
    assert "40" in page.inner_text("#turn-2 details.more pre").splitlines()
    snap(page, "trajectory")

    # The diff.
    page.goto(f"{base}/jobs/{job_id}/diff")
    assert page.locator("#diff .add", has_text="return x * 2").count() == 1
    assert page.locator("#diff .del", has_text="return x + x + 1").count() == 1
    snap(page, "diff")

    # Queues and workers.
    page.goto(f"{base}/queues")
    page.wait_for_function(
        "document.querySelector('#worker-count').textContent === '1'", timeout=30_000
    )
    assert page.locator(".queue[data-queue='agent']").count() == 1
    snap(page, "queues")

    # The same run in numbers: the worker's metrics and JSON logs, and the CLI.
    metrics = httpx.get(f"http://127.0.0.1:{site.metrics_port}/metrics", timeout=10).text
    assert 'qwenfix_jobs_finished_total{kind="fix",status="resolved"} 1.0' in metrics
    prompt = re.search(r'qwenfix_model_tokens_total\{type="prompt"\} ([\d.e+]+)', metrics)
    assert prompt and float(prompt.group(1)) > 1000
    assert 'qwenfix_job_duration_seconds_count{kind="fix"} 1.0' in metrics
    # Sandbox time was counted; how much is a timing, and timings live in benchmarks/.
    sandbox_seconds = re.search(r"qwenfix_sandbox_seconds_total ([\d.e+-]+)", metrics)
    assert sandbox_seconds and float(sandbox_seconds.group(1)) > 0
    assert 'qwenfix_queue_depth{queue="agent"}' in metrics
    receiver_metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'qwenfix_jobs{kind="fix",status="resolved"} 1.0' in receiver_metrics
    assert 'qwenfix_queue_depth{queue="quick"} 0.0' in receiver_metrics

    lines = [line for line in site.log_lines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    # From the moment logging is set up (before it, Python may warn that the worker
    # runs as root), every line is one JSON record.
    logged = [json.loads(line) for line in lines[start:]]
    ours = [entry for entry in logged if entry["logger"].startswith("workers.engine.fix")]
    assert ours and all(
        (entry["job"], entry["delivery"]) == (job_id, "delivery-dash") for entry in ours
    )
    ticks = [entry for entry in logged if "succeeded" in entry["message"]]
    assert {entry["job"] for entry in ticks} == {job_id}

    listed = subprocess.run(
        [QWENFIX, "jobs", "--json", "--status", "resolved"],
        env=site.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]
    shown = subprocess.run(
        [QWENFIX, "job", str(job_id)], env=site.env, capture_output=True, text=True, check=True
    )
    assert f"job {job_id} fix on {REPO}#7: resolved" in shown.stdout
    assert "tests: failed (exit 1): 2 failed → passed: 2 passed" in shown.stdout
    assert "turn 2: bash" in shown.stdout
    missing = subprocess.run([QWENFIX, "job", "999"], env=site.env, capture_output=True, text=True)
    assert missing.returncode == 2 and "there is no job 999" in missing.stderr
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
