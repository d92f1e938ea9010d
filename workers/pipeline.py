"""A fix job on GitHub: clone, fix in the sandbox, verify, push, open the pull request.

Every side effect converges when the job runs again (a retry, a redelivery after a
worker died): the branch name is deterministic and only ever carries qwenfix's own
commits, the pull request and the status comment are find-or-create.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, SecretStr

from bot.db import Job
from bot.forge import Feedback, GitHubForge
from bot.github_app import PUSH_PERMISSIONS, READ_PERMISSIONS, RUN_PERMISSIONS, GitHubApp
from sandbox import SandboxBackend
from workers.agent.trajectory import Sink
from workers.context.safety import fence_safe
from workers.fix import FixRequest, FixResult, run_fix
from workers.forge.local import Identity, LocalForge
from workers.llm.types import Model
from workers.push_checks import blocked
from workers.repo_config import RepoConfig, RepoConfigError, load_repo_config
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)


class PushRefused(Exception):
    """The branch holds commits that are not qwenfix's: never overwrite them."""


def git_env(token: SecretStr) -> dict[str, str]:
    # The token travels in an environment-configured header: never in a URL, a command
    # line or .git/config, and never into the sandbox (which gets a copy of the tree).
    basic = base64.b64encode(f"x-access-token:{token.get_secret_value()}".encode()).decode()
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


def git_out(cwd: Path, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, ["git", *args[:2]], proc.stdout,
                                            proc.stderr)
    return proc.stdout.strip()


def clone(url: str, branch: str, target: Path, token: SecretStr) -> None:
    env = git_env(token)
    subprocess.run(["git", "clone", "-q", "--filter=blob:none", "--no-tags", "--single-branch",
                    "--branch", branch, url, str(target)], env=env, check=True,
                   capture_output=True)


def push(repo: Path, branch: str, token: SecretStr, identity: Identity) -> None:
    """Push `branch`, replacing an earlier qwenfix attempt but never anyone else's work."""
    env = git_env(token)
    remote = git_out(repo, "ls-remote", "origin", f"refs/heads/{branch}", env=env).split()
    lease = f"--force-with-lease={branch}:{remote[0]}" if remote else \
        f"--force-with-lease={branch}:"
    if remote:
        git_out(repo, "fetch", "-q", "origin", f"refs/heads/{branch}", env=env)
        authors = git_out(repo, "log", "--format=%ae", "HEAD..FETCH_HEAD", env=env).split()
        others = sorted({a for a in authors if a != identity.email})
        if others:
            raise PushRefused(f"the branch {branch} has commits by {', '.join(others)}")
    git_out(repo, "push", "-q", lease, "origin", f"refs/heads/{branch}:refs/heads/{branch}",
         env=env)


def _issue_text(title: str, body: str, job: Job) -> str:
    text = f"{title}\n\n{body}".strip()
    if job.instructions:
        text += f"\n\nInstructions from @{job.sender} who asked for this fix:\n{job.instructions}"
    return text


def _tail(text: str, lines: int = 30) -> str:
    return fence_safe("\n".join(text.strip().splitlines()[-lines:]))


def unresolved_text(result: FixResult, job: Job) -> str:
    after = result.tests_after or result.tests_before
    tried = f"\n\nWhat it tried: {result.summary}" if result.summary else ""
    files = ""
    if result.diff:
        changed = [line[6:] for line in result.diff.splitlines() if line.startswith("+++ b/")]
        files = f"\nFiles it changed: {', '.join(f'`{f}`' for f in changed)}" if changed else ""
    tests = ""
    if after is not None:
        tests = (f"\n\nThe tests still fail ({after.summary}):\n\n"
                 f"```\n{_tail(after.output_tail)}\n```")
    return (f"🤔 qwenfix could not make the tests pass for this issue (job {job.id}): "
            f"{result.reason}.{tried}{files}{tests}\n\nNo pull request was opened. A clearer "
            f"issue text, or `@qwenfix fix <hints>`, can help.")


def unverified_text(result: FixResult, job: Job) -> str:
    """Every test change, and why the harness could not take it as a fix."""
    changes = "\n".join(f"- `{c}`" for c in result.test_changes) or "- (none listed)"
    judged = result.tests_after.summary if result.tests_after else "not run"
    own = result.tests_as_diff.summary if result.tests_as_diff else "not run"
    return (f"⚠️ qwenfix has a change for this issue that it could not verify (job {job.id}): "
            f"{result.reason}.\n\nThe change touches the tests or their configuration:\n"
            f"{changes}\n\nWith the base commit's tests the suite {judged}; with the "
            f"change's own edits it {own}. A change that passes only with its own test edits "
            "may have made the tests agree with a bug, so a person has to decide whether "
            "those edits are right.\n\nNo pull request was opened.")


def tell_not_handled(job: Job, *, app: GitHubApp, settings: WorkerSettings) -> None:
    """Say plainly on GitHub that a kind of request is not done yet, rather than nothing."""
    if job.installation_id is None or job.number is None:
        return
    forge = forge_for(job, app)
    forge.upsert_status(job.number, f"qwenfix received this {job.kind} request (job {job.id}) "
                                    f"but this version cannot do {job.kind} jobs yet.",
                        settings.bot_login)


def error_text(reason: str, job: Job) -> str:
    return (f"❌ qwenfix could not work on this (job {job.id}): {reason}\n\n"
            "What you can do: check the repository's `.qwenfix.yml` (`test:` is the command "
            "that decides success, `setup:` installs what the tests need), fix what the "
            "message names, then comment `@qwenfix fix` again. Operators find the whole "
            f"run under job {job.id} in the jobs API and the worker's log.")


def draft_unresolved(checkout: Path, result: FixResult, job: Job, text: str, *,
                      forge: GitHubForge, token: SecretStr, identity: Identity,
                      config: RepoConfig, base: str, settings: WorkerSettings,
                      why: str = "tests still fail",
                      headline: str = "the tests do not pass with this change") -> str:
    """A draft pull request with what was tried, for a maintainer to take over."""
    problem = blocked(result.diff, max_lines=settings.max_diff_lines,
                      allow_workflows=config.allow_workflow_changes)
    if problem is not None:
        return f"The attempt was not pushed as a draft: {problem}."
    branch = f"qwenfix/issue-{job.number}"
    head = git_out(checkout, "rev-parse", "HEAD", env=dict(os.environ))
    LocalForge(checkout, identity).publish(
        base=head, diff=result.diff, branch=branch,
        message=f"WIP: attempt at #{job.number} ({why})\n",
        description=text)
    try:
        push(checkout, branch, token, identity)
    except PushRefused as exc:
        return f"The attempt was not pushed as a draft: {exc}."
    body = (f"**Draft: {headline}.** qwenfix could not finish #{job.number}; this is what "
            f"it tried, for a person to take over.\n\n{text}")
    pull, _ = forge.open_or_update_pull(branch=branch, base=base,
                                        title=f"WIP: {result.title or f'attempt at #{job.number}'}",
                                        body=body, draft=True)
    return f"The attempt is in a draft pull request: {pull.url}."


def forge_for(job: Job, app: GitHubApp, extra: dict[str, str] | None = None) -> GitHubForge:
    """The repository of a job, with a token for the run's reads and replies."""
    if job.installation_id is None:
        raise ValueError("the job names no installation")
    return GitHubForge(app.for_repository(job.installation_id, job.repo,
                                          RUN_PERMISSIONS | (extra or {})), job.repo)


def run_fix_job(job: Job, *, app: GitHubApp, model: Model, backend: SandboxBackend,
                settings: WorkerSettings, sink: Sink | None = None) -> tuple[str, str]:
    """(status, reason) of a fix job; the issue is told the outcome in its status comment."""
    if job.installation_id is None or job.number is None:
        return "error", "the job names no installation or issue"
    forge = forge_for(job, app)
    info = forge.repository()
    title, body = forge.issue(job.number)
    forge.upsert_status(job.number, f"⚙️ qwenfix is working on this (job {job.id}): cloning "
                                    "the repository and running its tests.", settings.bot_login)
    identity = bot_identity(settings)
    token = app.installation_token(job.installation_id, job.repo, PUSH_PERMISSIONS)
    with tempfile.TemporaryDirectory(prefix="qwenfix-job-") as tmp:
        checkout = Path(tmp) / "repo"
        clone(info.clone_url, info.default_branch, checkout, token)
        request = FixRequest(repo=checkout, issue=_issue_text(title, body, job),
                             issue_number=job.number, title=title, co_author=job.sender)
        result = run_fix(request, model=model, backend=backend, settings=settings,
                         forge=LocalForge(checkout, identity), model_name=settings.llm_model,
                         sink=sink)
        if result.status == "error":
            forge.upsert_status(job.number, error_text(result.reason, job), settings.bot_login)
            return "error", result.reason
        try:
            config = load_repo_config([".qwenfix.yml"], lambda p: (checkout / p).read_bytes()
                                      if (checkout / p).is_file() else None)
        except RepoConfigError as exc:
            return "error", str(exc)
        if result.status == "unverified":
            text = unverified_text(result, job)
            if (config.on_unverified or settings.on_unverified) == "draft_pr" and result.diff:
                draft = draft_unresolved(checkout, result, job, text, forge=forge,
                                         token=token, identity=identity, config=config,
                                         base=info.default_branch, settings=settings,
                                         why="unverified",
                                         headline="it passes only with its own edits to "
                                                  "the tests, which a person has to check")
                text = text.replace("No pull request was opened.", draft)
            forge.upsert_status(job.number, text, settings.bot_login)
            return "unverified", result.reason
        if result.status == "unresolved":
            text = unresolved_text(result, job)
            if (config.on_unresolved or settings.on_unresolved) == "draft_pr" and result.diff:
                draft = draft_unresolved(checkout, result, job, text, forge=forge,
                                          token=token, identity=identity, config=config,
                                          base=info.default_branch, settings=settings)
                text = text.replace("No pull request was opened.", draft)
            forge.upsert_status(job.number, text, settings.bot_login)
            return "unresolved", result.reason
        problem = blocked(result.diff, max_lines=settings.max_diff_lines,
                          allow_workflows=config.allow_workflow_changes)
        branch = result.branch or f"qwenfix/issue-{job.number}"
        if problem is None:
            try:
                push(checkout, branch, token, identity)
            except PushRefused as exc:
                problem = str(exc)
        if problem is not None:
            forge.upsert_status(job.number, f"🛑 qwenfix made a change that passes the tests "
                                            f"but did not push it: {problem}.",
                                settings.bot_login)
            return "blocked", problem
    pull, created = forge.open_or_update_pull(
        branch=branch, base=info.default_branch, title=result.title or title,
        body=result.pr_description or "", draft=settings.pr_draft)
    if created and job.sender and job.sender.lower() != settings.bot_login.lower():
        try:
            forge.request_review(pull.number, job.sender)
        except Exception:  # a review request is a courtesy; never fail the job for it
            log.warning("could not request a review from %s", job.sender, exc_info=True)
    before = result.tests_before.summary if result.tests_before else "not run"
    after = result.tests_after.summary if result.tests_after else "not run"
    forge.upsert_status(job.number, f"✅ qwenfix opened {pull.url} (job {job.id}).\n\n"
                                    f"Tests: {before} → {after}.", settings.bot_login)
    return "resolved", pull.url


def run_review_job(job: Job, *, app: GitHubApp, model: Model, backend: SandboxBackend,
                   settings: WorkerSettings, sink: Sink | None = None) -> tuple[str, str]:
    """One review on the pull request: read-only, also for pull requests from forks."""
    from workers.review.run import ReviewRequest, run_review

    if job.installation_id is None or job.number is None:
        return "error", "the job names no installation or pull request"
    forge = forge_for(job, app)
    info = forge.repository()
    pull = forge.pull(job.number)
    forge.upsert_status(job.number, f"⚙️ qwenfix is reviewing this pull request (job "
                                    f"{job.id}).", settings.bot_login)
    token = app.installation_token(job.installation_id, job.repo, READ_PERMISSIONS)
    with tempfile.TemporaryDirectory(prefix="qwenfix-review-") as tmp:
        checkout = Path(tmp) / "repo"
        clone(info.clone_url, pull.base_ref, checkout, token)
        same_repo = pull.head_clone_url in ("", info.clone_url)
        # A fork's head is fetched from the fork itself, anonymously: it is public, and
        # our token is for the base repository only.
        env = git_env(token) if same_repo else {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        source = "origin" if same_repo else pull.head_clone_url
        git_out(checkout, "fetch", "-q", "--filter=blob:none", source,
             f"refs/heads/{pull.head_ref}", env=env)
        head = git_out(checkout, "rev-parse", "FETCH_HEAD", env=env)
        result = run_review(ReviewRequest(
            repo=checkout, base="HEAD", head=head, number=job.number, title=pull.title,
            body=pull.body, requester=job.sender, request=job.instructions),
            model=model, backend=backend, settings=settings, sink=sink)
    if result.status != "reviewed":
        forge.upsert_status(job.number, f"❌ qwenfix could not review this pull request (job "
                                        f"{job.id}): {result.reason}", settings.bot_login)
        return "error" if result.status == "error" else "unresolved", result.reason
    url = forge.create_review(job.number, commit_id=head, body=result.body(), comments=[
        {"path": c.path, "line": c.line, "side": c.side, "body": c.body}
        for c in result.inline])
    forge.upsert_status(job.number, f"📝 qwenfix reviewed this pull request (job {job.id}): "
                                    f"{len(result.inline)} inline comment(s). {url}",
                        settings.bot_login)
    return "reviewed", url


def feedback_text(title: str, feedback: list[Feedback], job: Job) -> str:
    lines = [f"Review feedback on the pull request \"{title}\" (opened by qwenfix). Make the "
             "changes asked for below; the repository's tests must still pass.", ""]
    for item in feedback:
        where = f" on `{item.path}` line {item.line}" if item.path else ""
        lines.append(f"- @{item.author}{where}: {item.body.strip()}")
    if job.instructions and not any(job.instructions in f.body for f in feedback):
        lines.append(f"- @{job.sender}: {job.instructions}")
    return "\n".join(lines)


class FollowUp(BaseModel):
    status: str
    reason: str
    commit: str | None = None
    result: FixResult | None = None


def bot_identity(settings: WorkerSettings) -> Identity:
    return Identity(name=settings.bot_login,
                    email=f"{settings.github_app_id or 0}+{settings.bot_login}"
                          "@users.noreply.github.com")


def follow_up(job: Job, *, app: GitHubApp, forge: GitHubForge, clone_url: str,
               branch: str, task: Callable[[datetime], str | None], title: str,
               model: Model, backend: SandboxBackend, settings: WorkerSettings,
               sink: Sink | None = None) -> FollowUp:
    """A verified commit on top of one of qwenfix's pull-request branches, pushed as a
    plain fast-forward: if anyone pushed meanwhile it is refused, never forced over them.
    `task(last_push)` gives the request, or None when there is nothing to do."""
    if job.installation_id is None:
        return FollowUp(status="error", reason="the job names no installation")
    identity = bot_identity(settings)
    token = app.installation_token(job.installation_id, job.repo, PUSH_PERMISSIONS)
    with tempfile.TemporaryDirectory(prefix="qwenfix-followup-") as tmp:
        checkout = Path(tmp) / "repo"
        clone(clone_url, branch, checkout, token)
        env = git_env(token)
        text = task(datetime.fromisoformat(git_out(checkout, "log", "-1", "--format=%cI",
                                                env=env)))
        if text is None:
            return FollowUp(status="skipped", reason="nothing to do since the last push")
        result = run_fix(FixRequest(repo=checkout, issue=text, title=title,
                                    co_author=job.sender),
                         model=model, backend=backend, settings=settings,
                         forge=LocalForge(checkout, identity), model_name=settings.llm_model,
                         sink=sink)
        if result.status != "resolved" or result.branch is None:
            return FollowUp(status="unresolved" if result.status == "unresolved" else "error",
                            reason=result.reason, result=result)
        problem = blocked(result.diff, max_lines=settings.max_diff_lines, allow_workflows=False)
        if problem is not None:
            return FollowUp(status="blocked", reason=problem, result=result)
        commit = git_out(checkout, "rev-parse", result.branch, env=env)
        git_out(checkout, "push", "-q", "origin", f"{commit}:refs/heads/{branch}", env=env)
    return FollowUp(status="resolved", reason=f"pushed {commit[:7]}", commit=commit,
                    result=result)


def run_feedback_job(job: Job, *, app: GitHubApp, model: Model, backend: SandboxBackend,
                     settings: WorkerSettings, sink: Sink | None = None) -> tuple[str, str]:
    """Follow-up commits on qwenfix's own pull request for what reviewers asked."""
    if job.installation_id is None or job.number is None:
        return "error", "the job names no installation or pull request"
    number = job.number
    forge = forge_for(job, app)
    pull = forge.pull(number)
    if pull.author.lower() != settings.bot_login.lower():
        return "skipped", "qwenfix follows up only on pull requests it opened"
    feedback: list[Feedback] = []

    def task(last_push: datetime) -> str | None:
        feedback.extend(forge.feedback_since(number, last_push, settings.bot_login,
                                             settings.trigger))
        if not feedback and not job.instructions:
            return None
        forge.upsert_status(number, f"⚙️ qwenfix is working on the review feedback (job "
                                    f"{job.id}).", settings.bot_login)
        return feedback_text(pull.title, feedback, job)

    done = follow_up(job, app=app, forge=forge, clone_url=forge.repository().clone_url,
                      branch=pull.head_ref, task=task,
                      title=f"Address review feedback on #{number}", model=model,
                      backend=backend, settings=settings, sink=sink)
    if done.status != "resolved" or done.commit is None:
        if done.status != "skipped":
            forge.upsert_status(number, f"🤔 qwenfix could not address the feedback (job "
                                        f"{job.id}): {done.reason}. Nothing was pushed.",
                                settings.bot_login)
        return done.status, done.reason
    short = done.commit[:7]
    summary = done.result.summary if done.result else ""
    for item in feedback:
        if item.kind == "review_comment":
            forge.reply_to_review_comment(number, item.id,
                                          f"Addressed in {short}. {summary or ''}".strip())
    after = done.result.tests_after if done.result else None
    addressed = "\n".join(f"- @{f.author}: {f.body.strip().splitlines()[0]}" for f in feedback)
    declined = done.result.declined if done.result else []
    declined_text = ("\n\nDeclined:\n" + "\n".join(f"- {d}" for d in declined)) \
        if declined else ""
    forge.comment(number, f"Pushed {short} for the review feedback; the tests pass "
                          f"({after.summary if after else 'verified'})."
                          f"\n\nAddressed:\n{addressed or '- ' + job.instructions}"
                          f"{declined_text}")
    forge.upsert_status(number, f"✅ qwenfix pushed {short} for the review feedback "
                                f"(job {job.id}).", settings.bot_login)
    return "resolved", done.reason


def run_fix_ci_job(job: Job, *, app: GitHubApp, model: Model, backend: SandboxBackend,
                   settings: WorkerSettings, attempts: int,
                   sink: Sink | None = None) -> tuple[str, str]:
    """A fix for qwenfix's own pull request whose checks failed; at most
    `settings.max_ci_attempts` attempts per pull request (`attempts` made so far)."""
    if job.installation_id is None:
        return "error", "the job names no installation"
    forge = forge_for(job, app, {"checks": "read"})
    number = job.number
    if number is None and job.head_branch:
        found = forge.open_pull(job.head_branch)
        number = found.number if found else None
    if number is None:
        return "skipped", "no open pull request for this branch"
    pull = forge.pull(number)
    if pull.author.lower() != settings.bot_login.lower():
        return "skipped", "qwenfix fixes CI only on pull requests it opened"
    if attempts >= settings.max_ci_attempts:
        forge.upsert_status(number, f"⏹️ qwenfix stopped fixing the checks of this pull "
                                    f"request after {attempts} attempt(s) (the limit is "
                                    f"{settings.max_ci_attempts}); a person should look.",
                            settings.bot_login)
        return "skipped", f"attempt limit reached ({attempts})"
    failures = forge.failed_checks(job.head_sha or pull.head_sha)
    if not failures:
        return "skipped", "no failing check runs on the head commit"
    forge.upsert_status(number, f"⚙️ qwenfix is fixing the failed checks (job {job.id}, "
                                f"attempt {attempts + 1} of {settings.max_ci_attempts}).",
                        settings.bot_login)
    text = (f"The continuous-integration checks failed on the pull request \"{pull.title}\" "
            "(opened by qwenfix). Make them pass; the repository's tests must pass too.\n\n"
            + "\n\n".join(failures))
    done = follow_up(job, app=app, forge=forge, clone_url=forge.repository().clone_url,
                      branch=pull.head_ref, task=lambda _: text,
                      title=f"Fix failing checks on #{number}", model=model, backend=backend,
                      settings=settings, sink=sink)
    if done.status == "resolved" and done.commit is not None:
        forge.upsert_status(number, f"✅ qwenfix pushed {done.commit[:7]} for the failed "
                                    f"checks (job {job.id}).", settings.bot_login)
    else:
        forge.upsert_status(number, f"🤔 qwenfix could not fix the failed checks (job "
                                    f"{job.id}): {done.reason}. Nothing was pushed.",
                            settings.bot_login)
    return done.status, done.reason
