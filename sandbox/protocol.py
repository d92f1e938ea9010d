"""The Sandbox protocol: starting and stopping is separate from using.

`SandboxBackend.start(spec)` gives a running `Sandbox`; `stop` removes it. Callers use
`session()` so that the sandbox is removed on every path, errors included.

`SandboxBackend.snapshot(sandbox)` keeps a prepared sandbox's filesystem so that fresh
sandboxes can start from it (`SandboxSpec.snapshot`): verification then sees only what the
repository's diff carries, not what a model left elsewhere, and later jobs skip the setup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from pydantic import BaseModel, Field

WORKDIR = "/workspace"


class SandboxSpec(BaseModel):
    """What to start. Small and serialisable, so a job record can keep it."""

    image: str
    """The image, or for a `snapshot` the image it was made from (named in messages)."""
    snapshot: str | None = None
    """Start from this snapshot (an id from `SandboxBackend.snapshot`) instead of `image`;
    the rest of the spec (network, limits, labels, CA bundle) applies as it does to an
    image."""
    workdir: str = WORKDIR
    user: str = "1000:1000"
    network: bool = False
    memory_mb: int = Field(default=4096, ge=64)
    cpus: float = Field(default=2.0, gt=0)
    pids_limit: int = Field(default=512, ge=16)
    max_file_mb: int = Field(default=4096, ge=1)
    """The largest file a command may write (RLIMIT_FSIZE): a runaway write stops there
    instead of filling the host's disk."""
    max_disk_mb: int = Field(default=10240, ge=1)
    """All a sandbox may write (its writable layer: the workspace, installed packages,
    /tmp). A command that goes past it is stopped (Docker backend; polled every second)."""
    ca_bundle: str | None = None
    """Host path of a CA bundle mounted read-only, for TLS-intercepting proxies."""
    labels: dict[str, str] = Field(default_factory=dict)


# Under /run: the bubblewrap backend binds /etc read-only, where no mount point can be made.
CA_BUNDLE_PATH = "/run/qwenfix/ca-bundle.crt"
CA_ENV_VARS = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def ca_environment(spec: SandboxSpec) -> dict[str, str]:
    """Variables that point common clients (OpenSSL, pip, requests, node) at the CA bundle."""
    if not spec.ca_bundle:
        return {}
    return {name: CA_BUNDLE_PATH for name in CA_ENV_VARS}


class CommandResult(BaseModel):
    """The outcome of one command. Timeouts and non-zero exits are results, not errors."""

    command: str
    exit_code: int | None
    """None when the command was killed at its timeout."""
    output: str
    """stdout and stderr interleaved; head and tail only when `truncated`."""
    timed_out: bool = False
    disk_exceeded: bool = False
    """The sandbox has written more than `max_disk_mb`: stopped, if it was still running;
    the output says so. Deleting files makes room again."""
    truncated: bool = False
    output_bytes: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.disk_exceeded


class Sandbox(Protocol):
    """A running, isolated workspace. All paths are inside the sandbox."""

    spec: SandboxSpec

    def run(
        self,
        command: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        as_root: bool = False,
        workdir: str | None = None,
        max_output_bytes: int = 1_000_000,
    ) -> CommandResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def upload_tar(self, tar_bytes: bytes, dest: str) -> None:
        """Unpack an archive at `dest`; entries keep the ownership in their headers."""
        ...

    def disable_network(self) -> None: ...


class Snapshot(BaseModel):
    """A sandbox's filesystem as commands saw it, owners and modes included; no processes."""

    id: str
    size_bytes: int
    """What the snapshot takes on disk beyond what it shares (Docker: its own layer)."""
    created: float
    """Epoch seconds."""
    labels: dict[str, str] = Field(default_factory=dict)


class SandboxBackend(Protocol):
    def start(self, spec: SandboxSpec) -> Sandbox: ...

    def stop(self, sandbox: Sandbox) -> None: ...

    def snapshot(self, sandbox: Sandbox, *, labels: dict[str, str] | None = None) -> Snapshot:
        """Keep everything `sandbox` can write (Docker: its writable layer; bubblewrap: the
        workspace and /tmp). The sandbox goes on running, unchanged."""
        ...

    def snapshots(self) -> list[Snapshot]:
        """This backend's snapshots, whoever took them."""
        ...

    def image_id(self, image: str) -> str:
        """What `image` is now: changes when it is rebuilt under the same name, so that what
        was made from it can tell it is stale. `ImageMissing` when there is none."""
        ...

    def remove_snapshot(self, snapshot_id: str) -> bool:
        """True when removed; False when there is no such snapshot or a running sandbox
        still uses it. Only an engine failure raises (`SandboxError`)."""
        ...


@contextmanager
def session(backend: SandboxBackend, spec: SandboxSpec) -> Iterator[Sandbox]:
    """Start a sandbox and remove it afterwards, whatever happens in between."""
    box = backend.start(spec)
    try:
        yield box
    finally:
        backend.stop(box)
