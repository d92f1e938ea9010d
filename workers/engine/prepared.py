"""Sandboxes ready for a repository's tests: set up once, snapshotted, started fresh.

The working sandbox is snapshotted after setup and before the agent starts. Every
verdict starts a new sandbox from that snapshot, so nothing the agent did outside its diff
can reach it. The snapshot is kept (size- and age-bounded) under a key of the image, the
setup command and the files setup reads, so a repository's next job skips setup.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from bot.contract.events import Event
from sandbox import Sandbox, SandboxBackend, SandboxError
from sandbox.protocol import Snapshot, session
from workers.engine import git as gitops
from workers.engine.agent.trajectory import Trajectory
from workers.engine.change import mark_started
from workers.engine.repo_config import RepoConfig
from workers.engine.workspace import prepare_workspace, retree, sandbox_spec
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

FORMAT = "1"
"""Bumped when what a snapshot holds changes, so older ones are never reused."""
KEY_LABEL, BASE_LABEL, LEFTOVERS_LABEL, PRISTINE_LABEL = (
    "io.qwenfix.setup-key",
    "io.qwenfix.base",
    "io.qwenfix.leftovers",
    "io.qwenfix.pristine",
)
SETUP_INPUTS = (
    # What dependency installers read, at any depth.
    "requirements*.txt",
    "constraints*.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "environment.y*ml",
    "tox.ini",
    "noxfile.py",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    ".npmrc",
    ".yarnrc*",
    ".nvmrc",
    "go.mod",
    "go.sum",
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain*",
    "pom.xml",
    "build.gradle*",
    "settings.gradle*",
    "gradle.properties",
    "Gemfile",
    "Gemfile.lock",
    "*.gemspec",
    "composer.json",
    "composer.lock",
    "Makefile",
    ".qwenfix.yml",
    "setup.sh",
)
_PATHLIKE = re.compile(r"[\w./-]+")


class Prepared(BaseModel):
    """A setup snapshot and what a sandbox started from it holds."""

    snapshot: str
    snapshot_base: str
    """The commit whose tree the snapshot's workspace holds."""
    base: str
    """This run's commit: what a fresh sandbox's workspace is made to hold."""
    leftovers: list[str]
    """What setup left in the workspace: never part of a change."""
    pristine: bool = True
    """Whether the snapshot's tracked files are its base commit's (setup edited none)."""
    key: str | None = None
    """None: made for one run only, removed after it."""
    reused: bool = False


def setup_key(repo: Path, base: str, config: RepoConfig, *, image: str) -> str:
    """Same key, same setup: the image, the command, and the blobs of the files it reads
    (dependency manifests and lock files anywhere, and any path the command names)."""
    listing = gitops.git(repo, "ls-tree", "-r", "-z", "--full-tree", base).decode()
    named = set(_PATHLIKE.findall(config.setup or ""))
    inputs = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        name = path.rsplit("/", 1)[-1]
        if path in named or any(fnmatch.fnmatchcase(name, p) for p in SETUP_INPUTS):
            inputs.append((path, meta.split()[2]))
    material = json.dumps(
        {
            "format": FORMAT,
            "image": image,
            "setup": config.setup,
            "network": config.setup_network,
            "inputs": sorted(inputs),
        }
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _found(backend: SandboxBackend, key: str) -> Prepared | None:
    newest: Snapshot | None = None
    for snap in backend.snapshots():
        if snap.labels.get(KEY_LABEL) == key and (newest is None or snap.created > newest.created):
            newest = snap
    if newest is None:
        return None
    base = newest.labels.get(BASE_LABEL, "")
    return Prepared(
        snapshot=newest.id,
        snapshot_base=base,
        base=base,
        leftovers=json.loads(newest.labels.get(LEFTOVERS_LABEL, "[]")),
        key=key,
        pristine=newest.labels.get(PRISTINE_LABEL) == "1",
        reused=True,
    )


@contextmanager
def working_sandbox(
    backend: SandboxBackend,
    repo: Path,
    base: str,
    *,
    config: RepoConfig,
    settings: WorkerSettings,
    trajectory: Trajectory,
    run_label: str,
    needs_network: bool = False,
    before_setup: Callable[[Sandbox], None] | None = None,
) -> Iterator[tuple[Sandbox, Prepared]]:
    """The agent's sandbox, set up, with the snapshot verdicts start from. A tree-changing
    step before setup (`before_setup`) makes the setup this run's own: nothing is reused
    or kept then."""
    cacheable = before_setup is None and (
        config.setup_cache if config.setup_cache is not None else settings.setup_cache
    )
    image = settings.sandbox_image
    if settings.sandbox_snapshot:
        image = f"{image}@{settings.sandbox_snapshot}"
    key = setup_key(repo, base, config, image=image) if cacheable else None
    found = _found(backend, key) if key else None
    if found is not None:
        spec = sandbox_spec(config, settings, run_label=run_label).model_copy(
            update={"snapshot": found.snapshot, "network": False, "ca_bundle": None}
        )
        with session(backend, spec) as sb:
            started = time.monotonic()
            retree(sb, repo, base, found.leftovers)
            trajectory.record(
                Event.SETUP_REUSED,
                snapshot=found.snapshot,
                key=key,
                snapshot_base=found.base,
                elapsed_s=round(time.monotonic() - started, 3),
            )
            log.info("setup reused from snapshot %s", found.snapshot[:19])
            mark_started(sb)
            yield sb, found.model_copy(update={"base": base})
        return
    spec = sandbox_spec(config, settings, run_label=run_label, needs_network=needs_network)
    with session(backend, spec) as sb:
        leftovers = prepare_workspace(
            sb,
            repo,
            base,
            config=config,
            settings=settings,
            trajectory=trajectory,
            before_setup=before_setup,
        )
        started = time.monotonic()
        pristine = sb.run("git diff --quiet HEAD", timeout=300).exit_code == 0
        labels = {
            BASE_LABEL: base,
            LEFTOVERS_LABEL: json.dumps(leftovers),
            PRISTINE_LABEL: "1" if pristine else "0",
            "io.qwenfix.run": run_label,
        }
        if key:
            labels[KEY_LABEL] = key
        snap = backend.snapshot(sb, labels=labels)
        trajectory.record(
            Event.SNAPSHOT,
            snapshot=snap.id,
            key=key,
            size_bytes=snap.size_bytes,
            elapsed_s=round(time.monotonic() - started, 3),
        )
        prepared = Prepared(
            snapshot=snap.id,
            snapshot_base=base,
            base=base,
            leftovers=leftovers,
            key=key,
            pristine=pristine,
        )
        mark_started(sb)
        try:
            yield sb, prepared
        finally:
            if key is None:
                backend.remove_snapshot(snap.id)
            else:
                prune(backend, settings, keep=snap.id)


@contextmanager
def fresh_sandbox(
    backend: SandboxBackend,
    prepared: Prepared,
    repo: Path,
    *,
    config: RepoConfig,
    settings: WorkerSettings,
    run_label: str,
    network: bool = False,
) -> Iterator[Sandbox]:
    """A new sandbox from the snapshot, its workspace exactly the base commit plus what
    setup installed: nothing of any earlier sandbox's work is in it. Offline unless
    `network` (an evaluation whose tests need it, as SWE-bench's harness allows)."""
    spec = sandbox_spec(config, settings, run_label=run_label).model_copy(
        update={
            "snapshot": prepared.snapshot,
            "network": network,
            "ca_bundle": (settings.sandbox_ca_bundle or None) if network else None,
        }
    )
    with session(backend, spec) as sb:
        if prepared.snapshot_base != prepared.base:
            retree(sb, repo, prepared.base, prepared.leftovers)
        elif not prepared.pristine:
            # Setup edited tracked files: a change is taken against the commit.
            reset = sb.run("git reset -q --hard", timeout=300)
            if not reset.ok:
                raise SandboxError(f"could not reset the fresh sandbox: {reset.output[-300:]}")
        yield sb


def prune(backend: SandboxBackend, settings: WorkerSettings, *, keep: str) -> list[str]:
    """Setup snapshots past the age limit go, then the oldest until the rest fit."""
    try:
        snaps = sorted(
            (s for s in backend.snapshots() if KEY_LABEL in s.labels),
            key=lambda s: s.created,
            reverse=True,
        )
    except SandboxError:
        log.warning("could not list setup snapshots to prune them", exc_info=True)
        return []
    removed, total = [], 0
    oldest = time.time() - settings.setup_cache_max_age_h * 3600
    for snap in snaps:
        total += snap.size_bytes
        too_big = total > settings.setup_cache_max_mb * 1024 * 1024
        # remove_snapshot says False while a sandbox still uses it: it stays, and counts.
        if (
            snap.id != keep
            and (snap.created < oldest or too_big)
            and backend.remove_snapshot(snap.id)
        ):
            removed.append(snap.id)
            total -= snap.size_bytes
    if removed:
        log.info("removed %d setup snapshot(s)", len(removed))
    return removed
