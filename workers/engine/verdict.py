"""The verdict: the base commit's tests, over exactly the change, in a sandbox the agent
never touched.

A change is laid into a fresh sandbox started from the setup snapshot. Then the base
commit's versions of the tests and of everything that controls them are put back over it
(tests the change adds stay and run too), and the base commit's test command runs. When
the change edits existing tests or their configuration, its own version of the suite runs
as well, in another fresh sandbox, and both are reported: a change that passes only with
its own edits is `unverified`, never `resolved`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox import Sandbox, SandboxBackend, SandboxError
from workers.engine import git as gitops
from workers.engine.change import HARNESS_DIR, Change
from workers.engine.prepared import Prepared, fresh_sandbox
from workers.engine.repo_config import EffectiveLimits, RepoConfig
from workers.engine.test_controls import (
    ControlKind,
    Overlay,
    TestControl,
    base_overlay,
    named_in,
    runner_references,
    test_controls,
)
from workers.engine.test_reports import FAILED
from workers.engine.verify import TestRun, Verdict, judge, run_tests
from workers.engine.workspace import SANDBOX_GID, SANDBOX_UID
from workers.settings import WorkerSettings

Status = Literal["resolved", "unresolved", "unverified"]
SHOWN = 5


class Judgement(BaseModel):
    status: Status
    reason: str
    verdict: Verdict
    """The base commit's suite over the change, ranked against the baseline."""
    judged: TestRun | None = None
    as_diff: TestRun | None = None
    """The suite as the change leaves it (only when it edits tests or their config)."""
    as_diff_verdict: Verdict | None = None
    check: str | None = None
    """What the required check printed when it failed."""
    test_changes: list[TestControl] = Field(default_factory=list)
    """Every test file and test control the change touches, added tests included."""
    runner_references: list[str] = Field(default_factory=list)
    outside: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def edits(self) -> list[TestControl]:
        """The test changes that are not new tests: what the base's versions replace."""
        return [
            c for c in self.test_changes if not (c.kind is ControlKind.TEST and c.status == "added")
        ]


def _some(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


class Judge:
    """Judges changes of one run: the same baseline, snapshot and commands for each."""

    def __init__(
        self,
        *,
        backend: SandboxBackend,
        prepared: Prepared,
        repo: Path,
        config: RepoConfig,
        settings: WorkerSettings,
        baseline: TestRun,
        issue_text: str,
        check: str | None = None,
        run_label: str = "verdict",
    ) -> None:
        self.backend, self.prepared, self.repo = backend, prepared, repo
        self.config, self.settings, self.baseline = config, settings, baseline
        self.issue_text, self.check, self.run_label = issue_text, check, run_label
        self._judged: dict[str, Judgement] = {}

    def base(self, path: str) -> bytes | None:
        return gitops.read_blob(self.repo, self.prepared.base, path)

    def __call__(
        self, change: Change, *, label: str, outside: Callable[[], list[str]] = list
    ) -> Judgement:
        """The same tree is judged once per run: a submit repeated without a change gets
        the same answer without running anything again. `outside` lists what the agent
        wrote outside the repository: evidence for a refusal, looked for only then."""
        if change.tree not in self._judged:
            self._judged[change.tree] = self._judge(change, label, outside)
        return self._judged[change.tree]

    def _judge(self, change: Change, label: str, outside: Callable[[], list[str]]) -> Judgement:
        found = Judgement(
            status="unresolved",
            reason="",
            left_out=change.left_out,
            verdict=judge(self.baseline, self.baseline, diff="", issue_text=""),
        )
        if change.empty:
            found.reason = found.verdict.reason
            return found
        controls = test_controls(
            change.files, self.base, change.new, named=named_in(self.config.test or "")
        )
        found.test_changes = controls
        found.runner_references = runner_references(change.files, self.base, change.new)
        overlay = base_overlay(controls, self.base, change.new)
        found.judged, found.check = self._run(change, overlay, f"{label}-judged")
        if found.check is not None:
            found.reason = (
                f"`{self.check}` must pass (exit 0) and it exits {found.judged.exit_code}"
            )
            return found
        found.verdict = self._rank(found.judged, change)
        if found.edits:
            found.as_diff, _ = self._run(change, None, f"{label}-as-diff")
            found.as_diff_verdict = self._rank(found.as_diff, change)
        if not found.verdict.resolved and not (
            found.as_diff_verdict and found.as_diff_verdict.resolved
        ):
            found.outside = outside()
        found.status, found.reason = self._decide(found)
        if found.resolved:
            unproven = self._unproven(change, found, label)
            if unproven:
                found.status, found.reason = (
                    "unresolved",
                    (
                        "the suite was already red before the change, and the test(s) the change "
                        f"adds pass without its fix too ({_some(unproven)}): they do not show "
                        "that it fixes anything"
                    ),
                )
        return found

    def _unproven(self, change: Change, found: Judgement, label: str) -> list[str]:
        """On a red baseline a change is resolved by the tests it adds or the issue names.
        One that failed before proves the fix by passing now; tests the change adds prove it
        only if they fail without the rest of the change (run on the base code alone)."""
        verdict, before = found.verdict, self.baseline.tests or {}
        if not verdict.still_failing or any(before.get(t) in FAILED for t in verdict.targets):
            return []
        added = {
            c.path for c in found.test_changes if c.kind is ControlKind.TEST and c.status == "added"
        }
        tests_only = Change(
            base=change.base,
            diff="",
            tree="",
            files=[f for f in change.files if f.path in added],
            contents={p: change.contents[p] for p in added},
        )
        without, _ = self._run(tests_only, None, f"{label}-without-fix")
        if without.tests is None:  # the runner could not even report: the tests need the fix
            return []
        # Absent counts: a test file that cannot be collected without the fix fails there.
        if any(without.tests.get(t, "missing") in {*FAILED, "missing"} for t in verdict.targets):
            return []
        return verdict.targets

    def _rank(self, run: TestRun, change: Change) -> Verdict:
        return judge(self.baseline, run, diff=change.diff, issue_text=self.issue_text)

    def _decide(self, found: Judgement) -> tuple[Status, str]:
        verdict, own = found.verdict, found.as_diff_verdict
        edits = _some([c.describe() for c in found.edits])
        if verdict.resolved:
            if own is not None and not own.resolved:
                return "unresolved", (
                    f"with the base commit's tests the change passes, but it also edits "
                    f"{edits}, and with those edits {own.reason}"
                )
            if found.runner_references:
                return "unverified", (
                    "the tests pass, but code the change adds reaches into the test runner, "
                    f"which the harness cannot rule out: {_some(found.runner_references)}"
                )
            if own is not None:
                return "resolved", (
                    f"{verdict.reason} with the base commit's tests; it "
                    f"also edits {edits}, and passes with those edits too"
                )
            return "resolved", verdict.reason
        if own is not None and own.resolved:
            return "unverified", (
                f"the change passes only with its own edits to tests or test configuration "
                f"({edits}); with the base commit's versions of them, {verdict.reason}"
            )
        notes = [verdict.reason]
        if found.edits:
            notes.append(
                f"it edits tests or test configuration ({edits}); the verdict used "
                "the base commit's versions"
            )
        if found.outside:
            notes.append(
                "files it wrote outside the repository play no part in the "
                f"verdict: {_some(found.outside)}"
            )
        if found.left_out:
            notes.append(f"files left out of the change (ignored): {_some(found.left_out)}")
        return "unresolved", "; ".join(notes)

    def _run(
        self, change: Change, overlay: Overlay | None, label: str
    ) -> tuple[TestRun, str | None]:
        limits = EffectiveLimits.of(self.config, self.settings)
        with fresh_sandbox(
            self.backend,
            self.prepared,
            self.repo,
            config=self.config,
            settings=self.settings,
            run_label=self.run_label,
        ) as sb:
            lay(sb, change, overlay)
            if self.check:
                checked = sb.run(self.check, timeout=self.settings.command_timeout_s * 5)
                if not checked.ok:
                    return TestRun(
                        command=self.check,
                        exit_code=checked.exit_code,
                        timed_out=checked.timed_out,
                        output_tail=checked.output[-4000:],
                    ), checked.output
            run = run_tests(
                sb,
                self.config.test or "",
                label=label,
                timeout=limits.test_timeout_s,
                reporters=self.config.reporters,
            )
        return run, None


def lay(sb: Sandbox, change: Change, overlay: Overlay | None = None) -> None:
    """The change's tree over the base in `sb`, then the overlay's base versions."""
    gone = [f.path for f in change.files] + (overlay.delete if overlay else [])
    if gone:
        _remove(sb, gone)
    if any(f.status != "deleted" for f in change.files):
        sb.upload_tar(change.as_tar(SANDBOX_UID, SANDBOX_GID), sb.spec.workdir)
    if overlay and overlay.write:
        sb.upload_tar(
            gitops.tree_tarball(
                [("100644", p, data) for p, data in sorted(overlay.write.items())],
                uid=SANDBOX_UID,
                gid=SANDBOX_GID,
            ),
            sb.spec.workdir,
        )


def _remove(sb: Sandbox, paths: list[str]) -> None:
    """Whatever stands at these paths goes (a file that became a directory, or back)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    if len(quoted) < 100_000:
        command = f"rm -rf -- {quoted}"
    else:  # past what one command line should carry: a NUL-separated list
        listing = f"{HARNESS_DIR}-remove"
        sb.write_file(listing, "".join(f"{p}\0" for p in paths).encode("utf-8", "surrogateescape"))
        command = f"xargs -0 -r rm -rf -- < {shlex.quote(listing)}"
    removed = sb.run(command, timeout=300)
    if not removed.ok:
        raise SandboxError(f"could not lay the change: {removed.output[-300:]}")
