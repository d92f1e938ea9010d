"""Per-task environments for `qwenfix eval`: the sandbox image of the task's Python, a
snapshot of the dependencies every task of a repository and version shares (built once,
found again by its key, kept between runs), and the per-task preparation whose edits to
the repository become part of its base, as SWE-bench commits them before a run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import ImageMissing, SandboxBackend, SandboxError, SandboxUnavailable
from sandbox.protocol import Sandbox
from workers.engine import git as gitops
from workers.engine.repo_config import RepoConfig
from workers.engine.workspace import copy_in, sandbox_spec, setup_environment
from workers.eval.environment_spec import TaskEnvironment
from workers.eval.tasks import EvalTask
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

ENVIRONMENT_LABEL = "io.qwenfix.eval-environment"
PREPARED_LABEL = "io.qwenfix.eval-prepared"
OUTPUT_TAIL = 1500


class EnvironmentFailed(Exception):
    """The task's environment cannot be had; the message says why and what to do."""


@dataclass(frozen=True)
class TaskSandbox:
    """Where a task's sandboxes start, and the commit they start at."""

    image: str
    snapshot: str | None
    base: str
    environment_key: str | None = None
    environment_reused: bool = False
    temporary: list[str] = field(default_factory=list)
    """Snapshots of this task alone, removed when it ends."""

    def settings(self, settings: WorkerSettings) -> WorkerSettings:
        return settings.model_copy(
            update={"sandbox_image": self.image, "sandbox_snapshot": self.snapshot}
        )


def missing_python(python: str | None, image: str) -> str:
    if python is None:
        return f"the sandbox image {image} is missing: bash scripts/build-sandbox-image.sh"
    return (
        f"Python {python} is not available: no sandbox image {image}. Build it with "
        f"`bash scripts/build-sandbox-image.sh --python {python}` (offline, from Debian: "
        f"3.9, 3.11, 3.13) or `docker build --build-arg PYTHON={python} -t {image} "
        "deploy/sandbox`"
    )


def image_for(python: str | None, settings: WorkerSettings) -> str:
    return settings.sandbox_image if python is None else settings.eval_image.format(python=python)


class Environments:
    """Builds and finds environment snapshots; one build per key at a time, so that two
    workers on tasks of one repository and version share the first one's."""

    def __init__(self, backend: SandboxBackend, settings: WorkerSettings) -> None:
        self.backend = backend
        self.settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def for_task(
        self, task: EvalTask, env: TaskEnvironment, checkout: Path, *, run_label: str
    ) -> TaskSandbox:
        image = image_for(env.python, self.settings)
        snapshot, key, reused = None, None, False
        # Asked first: a missing Python is said before any work, not when the agent's
        # sandbox cannot start.
        try:
            identity = self.backend.image_id(image)
        except ImageMissing as exc:
            raise EnvironmentFailed(missing_python(env.python, exc.image)) from exc
        except SandboxUnavailable as exc:
            raise EnvironmentFailed(str(exc)) from exc
        if env.dependencies or env.files:
            # The image's id, not its name: a rebuilt image makes new environments.
            key = env.environment_key(task.repo, task.version, identity)
            snapshot, reused = self._environment(task, env, image, key, run_label)
        base = gitops.resolve(checkout, "HEAD")
        if not env.prepare:
            return TaskSandbox(image, snapshot, base, key, reused)
        prepared, base = self._prepare(task, env, image, snapshot, checkout, base, run_label)
        return TaskSandbox(image, prepared, base, key, reused, temporary=[prepared])

    def release(self, sandbox: TaskSandbox) -> None:
        for snapshot in sandbox.temporary:
            try:
                self.backend.remove_snapshot(snapshot)
            except SandboxError:
                log.warning("could not remove snapshot %s", snapshot, exc_info=True)

    def _environment(
        self, task: EvalTask, env: TaskEnvironment, image: str, key: str, run_label: str
    ) -> tuple[str, bool]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._find(key)
            if found is not None:
                return found, True
            what = f"the environment of {task.repo} {task.version or ''} (Python {env.python})"
            started = time.monotonic()
            with self._sandbox(image, None, run_label, env.python) as sb:
                for path, text in env.files.items():
                    sb.run(f"mkdir -p {Path(path).parent}", timeout=30, as_root=True)
                    sb.write_file(path, text.encode())
                for command in env.dependencies:
                    self._run(sb, command, what)
                snap = self.backend.snapshot(
                    sb,
                    labels={
                        ENVIRONMENT_LABEL: key,
                        "io.qwenfix.eval-repo": task.repo,
                        "io.qwenfix.eval-version": task.version or "",
                        "io.qwenfix.eval-python": env.python or "",
                    },
                )
            log.info("%s built in %.0f s (%s)", what, time.monotonic() - started, snap.id[:19])
            return snap.id, False

    def _find(self, key: str) -> str | None:
        for snap in self.backend.snapshots():
            if snap.labels.get(ENVIRONMENT_LABEL) == key:
                return snap.id
        return None

    def _prepare(
        self,
        task: EvalTask,
        env: TaskEnvironment,
        image: str,
        snapshot: str | None,
        checkout: Path,
        base: str,
        run_label: str,
    ) -> tuple[str, str]:
        """The per-task steps (system packages, edits to build files) in a sandbox of the
        environment; what they install is kept as a snapshot with an empty workspace, and
        their edits to tracked files are committed on the checkout as the new base."""
        what = f"{task.instance_id}'s preparation"
        with self._sandbox(image, snapshot, run_label, env.python) as sb:
            copy_in(sb, checkout, base)
            for command in env.prepare:
                self._run(sb, command, what)
            edits = sb.run("git diff --binary HEAD", timeout=300, max_output_bytes=50_000_000)
            if not edits.ok:
                raise EnvironmentFailed(f"{what}: could not read its edits: {edits.output[-500:]}")
            clear = sb.run(f"find {sb.spec.workdir} -mindepth 1 -delete", timeout=300, as_root=True)
            if not clear.ok:
                raise EnvironmentFailed(f"{what}: could not clear the workspace: {clear.output}")
            snap = self.backend.snapshot(sb, labels={PREPARED_LABEL: task.instance_id})
        if edits.output.strip():
            gitops.git(
                checkout,
                "apply",
                "--index",
                "--whitespace=nowarn",
                "-",
                input=edits.output.encode(),
            )
            gitops.git(
                checkout,
                "-c",
                "user.name=qwenfix eval",
                "-c",
                "user.email=eval@localhost",
                "commit",
                "-q",
                "--no-verify",
                "-m",
                "The task's preparation (SWE-bench's pre_install)",
            )
            base = gitops.resolve(checkout, "HEAD")
        return snap.id, base

    @contextmanager
    def _sandbox(
        self, image: str, snapshot: str | None, run_label: str, python: str | None
    ) -> Iterator[Sandbox]:
        """A sandbox as a job's setup phase gets one, with the network it needs."""
        settings = self.settings.model_copy(
            update={"sandbox_image": image, "sandbox_snapshot": snapshot}
        )
        spec = sandbox_spec(RepoConfig(), settings, run_label=run_label, needs_network=True)
        try:
            box = self.backend.start(spec)
        except ImageMissing as exc:
            raise EnvironmentFailed(missing_python(python, exc.image)) from exc
        except SandboxUnavailable as exc:
            raise EnvironmentFailed(str(exc)) from exc
        try:
            yield box
        finally:
            self.backend.stop(box)

    def _run(self, sb: Sandbox, command: str, what: str) -> None:
        done = sb.run(
            command,
            timeout=self.settings.setup_timeout_s,
            as_root=True,
            env=setup_environment(sb.spec),
        )
        if done.timed_out or not done.ok:
            how = "timed out" if done.timed_out else f"failed (exit {done.exit_code})"
            raise EnvironmentFailed(f"{what}: `{command}` {how}:\n{done.output[-OUTPUT_TAIL:]}")
