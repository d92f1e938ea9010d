"""A repository's tree in a fresh sandbox: copied in, made a git repository, set up, then
taken offline. Shared by every kind of job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot.contract.events import Event
from sandbox import Sandbox, SandboxSpec
from sandbox.protocol import ca_environment
from workers.engine import git as gitops
from workers.engine.agent.trajectory import Trajectory
from workers.engine.git_history import history_tarball
from workers.engine.repo_config import EffectiveLimits, RepoConfig
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

SANDBOX_UID, SANDBOX_GID = 1000, 1000
SANDBOX_HOME = "/home/sandbox"
EXCLUDES = [  # build litter that never belongs in a change
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    "*.egg-info/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".coverage",
    "htmlcov/",
]


class WorkspaceFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sandbox_spec(
    config: RepoConfig, settings: WorkerSettings, *, run_label: str, needs_network: bool = False
) -> SandboxSpec:
    """Network only for a setup (or an upgrade step) that is allowed it, and the CA bundle
    only then."""
    network = (bool(config.setup) or needs_network) and (
        config.setup_network if config.setup_network is not None else settings.setup_network
    )
    return SandboxSpec(
        image=settings.sandbox_image,
        snapshot=settings.sandbox_snapshot,
        network=network,
        memory_mb=settings.sandbox_memory_mb,
        cpus=settings.sandbox_cpus,
        pids_limit=settings.sandbox_pids_limit,
        max_file_mb=settings.sandbox_max_file_mb,
        max_disk_mb=settings.sandbox_max_disk_mb,
        ca_bundle=(settings.sandbox_ca_bundle or None) if network else None,
        labels={"io.qwenfix.run": run_label},
    )


def setup_environment(spec: SandboxSpec) -> dict[str, str]:
    """What a setup command runs with: root's pip quiet about being root, and the CA
    bundle named where the spec mounts one."""
    return {
        **ca_environment(spec),
        "PIP_ROOT_USER_ACTION": "ignore",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "DEBIAN_FRONTEND": "noninteractive",
    }


def copy_in(sb: Sandbox, repo: Path, rev: str) -> None:
    """The commit's tree into the workspace as a git repository whose HEAD is the base, so
    `git diff` in the sandbox shows the agent its change. Its history reaches back to the
    nearest tag, for tools that take the version from `git describe`; without a tag the
    base is the only commit."""
    sb.upload_tar(
        gitops.commit_tarball(repo, rev, uid=SANDBOX_UID, gid=SANDBOX_GID), sb.spec.workdir
    )
    history = history_tarball(repo, rev, uid=SANDBOX_UID, gid=SANDBOX_GID)
    if history is not None:
        sb.upload_tar(history, sb.spec.workdir)
        # The index built afresh from the files (they are the commit's), which writes the
        # blobs a partial history lacks: `git add` alone skips files the index matches.
        start = "git rm -r -q -f --cached --ignore-unmatch . && git add -A -f"
    else:
        start = "git init -q"
    excludes = "\\n".join(EXCLUDES)
    init = sb.run(
        f"{start} && git config user.name qwenfix && git config user.email qwenfix@localhost"
        f" && printf '{excludes}\\n' > .git/qwenfix-excludes"
        " && git config core.excludesFile .git/qwenfix-excludes"
        + (
            ""
            if history
            else " && git add -A -f && git commit -q --no-verify --allow-empty -m base"
        ),
        timeout=300,
    )
    if not init.ok:
        raise WorkspaceFailed(f"could not prepare the workspace: {init.output[-1000:]}")


def prepare_workspace(
    sb: Sandbox,
    repo: Path,
    rev: str,
    *,
    config: RepoConfig,
    settings: WorkerSettings,
    trajectory: Trajectory,
    before_setup: Callable[[Sandbox], None] | None = None,
) -> list[str]:
    """Copy the commit in, make it a fresh git repository, run setup, go offline.
    `before_setup` may change the tree first, while the network is still there. Returns
    what setup left in the workspace (never part of a change)."""
    copy_in(sb, repo, rev)
    if before_setup is not None:
        before_setup(sb)
    if config.setup:
        timeout = EffectiveLimits.of(config, settings).setup_timeout_s
        log.info("setup (%s network): %s", "with" if sb.spec.network else "without", config.setup)
        env = setup_environment(sb.spec)
        if sb.run(f"test -d {SANDBOX_HOME}", timeout=30).ok:
            # Setup runs as root, but what it caches (~/.npm, corepack, ~/.m2, ~/.gradle)
            # is for the sandbox user's offline test runs: in their home, chowned after.
            env["HOME"] = SANDBOX_HOME
        setup = sb.run(config.setup, timeout=timeout, as_root=True, env=env)
        trajectory.record(Event.SETUP, **setup.model_dump())
        if setup.timed_out or not setup.ok:
            what = "timed out" if setup.timed_out else f"failed (exit {setup.exit_code})"
            network = "with" if sb.spec.network else "without"
            raise WorkspaceFailed(
                f"setup command `{config.setup}` {what}, run {network} network:\n"
                f"{setup.output[-1500:]}"
            )
        # Setup ran as root; hand back whatever it created inside the workspace and the
        # sandbox user's home (where GOPATH, CARGO_HOME and ~/.m2 keep dependencies).
        owned = f"{sb.spec.workdir} {SANDBOX_HOME}"
        foreign = sb.run(f'find {owned} ! -user "$(id -u)" -print -quit 2>/dev/null', timeout=300)
        if foreign.output.strip():
            chown = sb.run(
                f"chown -R {SANDBOX_UID}:{SANDBOX_GID} {owned}", timeout=300, as_root=True
            )
            if not chown.ok:
                raise WorkspaceFailed(
                    f"could not hand the workspace back to the sandbox user: {chown.output}"
                )
    if sb.spec.network:
        sb.disable_network()
    return setup_leftovers(sb)


def setup_leftovers(sb: Sandbox) -> list[str]:
    """Everything untracked in the workspace now (virtualenvs, node_modules, build
    output), ignored or not, as the shortest paths: excluded from the agent's `git status`
    and from every change."""
    found = sb.run("git ls-files -z --others --directory", timeout=120, max_output_bytes=5_000_000)
    if not found.ok:
        raise WorkspaceFailed(f"could not list what setup left: {found.output[-500:]}")
    leftovers = sorted(p for p in found.output.split("\0") if p)
    _exclude(sb, leftovers)
    return leftovers


def retree(sb: Sandbox, repo: Path, rev: str, leftovers: list[str]) -> None:
    """A sandbox from a setup snapshot of another commit: its tracked files give way to
    `rev`'s, what setup installed stays."""
    # Listed as the workspace's owner: root's git refuses a repository it does not own
    # ("dubious ownership"), and an empty list would leave the other commit's files.
    listed = sb.run("git ls-files -z > /tmp/qwenfix-tracked", timeout=300)
    if not listed.ok:
        raise WorkspaceFailed(f"could not list the snapshot's files: {listed.output[-500:]}")
    clear = sb.run(
        "xargs -0 -r rm -f -- < /tmp/qwenfix-tracked && rm -rf .git /tmp/qwenfix-tracked",
        timeout=300,
        as_root=True,
    )
    if not clear.ok:
        raise WorkspaceFailed(f"could not clear the snapshot's workspace: {clear.output[-500:]}")
    copy_in(sb, repo, rev)
    _exclude(sb, leftovers)


def _exclude(sb: Sandbox, paths: list[str]) -> None:
    if paths:
        sb.write_file(".git/qwenfix-setup-excludes", "".join(f"/{p}\n" for p in paths).encode())
        sb.run("cat .git/qwenfix-setup-excludes >> .git/info/exclude", timeout=60)
