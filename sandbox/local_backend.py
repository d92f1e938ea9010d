"""Local backend: bubblewrap namespaces on this machine, for hosts without a Docker engine.

The workspace is a private directory bound at /workspace and /tmp is private too; the
host's /usr and /etc are visible read-only, nothing else of the host is (no home
directories, no sockets), the environment is rebuilt from nothing, and the network is a
private, empty namespace unless the spec allows it. Weaker than Docker: no memory or CPU
limits (only an address-space and process-count ulimit), and the host's tools are the image.

The workspace and /tmp are the only places a command can write, so a snapshot is a copy of
those two directories (`cp -a`: modes, owners, symlinks and times kept; reflinked where the
filesystem can) and starting from it is copying them back into a fresh root.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from sandbox.errors import SandboxError, SandboxUnavailable
from sandbox.output import HeadTailBuffer
from sandbox.protocol import CA_BUNDLE_PATH, CommandResult, Sandbox, SandboxSpec, Snapshot

log = logging.getLogger(__name__)

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
}
ROOT_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
# A sandbox root's writable directories: all that a snapshot needs to keep.
WRITABLE_DIRS = ("workspace", "tmp")
SNAPSHOT_DIR_NAME = "qwenfix-sandbox-snapshots"
SNAPSHOT_META = "snapshot.json"
# Ids are made here (uuid4 hex); anything else names no snapshot, and never a path.
SNAPSHOT_ID = re.compile(r"[0-9a-f]{32}")
COPY_TIMEOUT_S = 600


class LocalSandbox:
    def __init__(self, spec: SandboxSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.workspace = root / "workspace"
        self.tmp = root / "tmp"
        self.network = spec.network

    def _bwrap(self, as_root: bool, workdir: str) -> list[str]:
        uid, gid = ("0", "0") if as_root else self.spec.user.split(":")
        args = [
            "bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
            "--ro-bind",
            "/etc",
            "/etc",
        ]
        for name in ROOT_LINKS:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--bind",
            str(self.tmp),
            "/tmp",
            "--bind",
            str(self.workspace),
            self.spec.workdir,
            "--chdir",
            workdir,
            "--uid",
            uid,
            "--gid",
            gid,
        ]
        if self.spec.ca_bundle:
            args += ["--ro-bind", self.spec.ca_bundle, CA_BUNDLE_PATH]
        if self.network:
            args += ["--share-net"]
        return args

    def run(
        self,
        command: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        as_root: bool = False,
        workdir: str | None = None,
        max_output_bytes: int = 1_000_000,
    ) -> CommandResult:
        limits = (
            f"ulimit -u {self.spec.pids_limit} -v {self.spec.memory_mb * 1024} "
            f"-f {self.spec.max_file_mb * 1024} 2>/dev/null; "
        )
        argv = [*self._bwrap(as_root, workdir or self.spec.workdir), "bash", "-c", limits + command]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**BASE_ENV, **(env or {})},
            start_new_session=True,
        )
        buffer = HeadTailBuffer(max_output_bytes)
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - PIPE always gives a stream
            raise SandboxError("no output pipe")

        def pump() -> None:
            for chunk in iter(lambda: os.read(stdout.fileno(), 65536), b""):
                buffer.feed(chunk)

        reader = threading.Thread(target=pump, name="sandbox-output", daemon=True)
        reader.start()
        reader.join(timeout)
        timed_out = reader.is_alive()
        if timed_out:
            # bwrap is pid 1 of the command's pid namespace: killing it ends everything.
            os.killpg(proc.pid, signal.SIGKILL)
            reader.join(5)
        code = proc.wait()
        stdout.close()
        return CommandResult(
            command=command,
            exit_code=None if timed_out else code,
            output=buffer.text(),
            timed_out=timed_out,
            truncated=buffer.truncated,
            output_bytes=buffer.total,
            duration_s=round(time.monotonic() - started, 3),
        )

    def _host_path(self, path: str) -> Path:
        inside = Path(os.path.normpath(os.path.join(self.spec.workdir, path)))
        for mount, host in ((Path(self.spec.workdir), self.workspace), (Path("/tmp"), self.tmp)):
            if inside.is_relative_to(mount):
                return host / inside.relative_to(mount)
        raise SandboxError(f"{path} is outside the sandbox's writable directories")

    def read_file(self, path: str) -> bytes:
        host = self._host_path(path)
        if host.is_dir():
            raise IsADirectoryError(path)
        try:
            return host.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(path) from None

    def write_file(self, path: str, data: bytes) -> None:
        host = self._host_path(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)

    def upload_tar(self, tar_bytes: bytes, dest: str) -> None:
        target = self._host_path(os.path.relpath(dest, self.spec.workdir))
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            tar.extractall(target, filter=_owned_by_us)

    def disable_network(self) -> None:
        self.network = False


def _owned_by_us(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    # Header owners mean nothing here: the namespace maps only our own uid to the sandbox
    # user, so files must belong to us to be the sandbox user's inside.
    safe = tarfile.tar_filter(member, dest)
    return safe.replace(uid=None, gid=None, uname=None, gname=None)  # type: ignore[arg-type]


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy a directory to `dest` (which must not exist) as it is: modes, owners, symlinks,
    times. Reflinks make it nearly free where the filesystem has them (btrfs, XFS)."""
    try:
        done = subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", str(source), str(dest)],
            capture_output=True,
            text=True,
            timeout=COPY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"could not copy {source}: {exc}") from exc
    if done.returncode != 0:
        raise SandboxError(f"could not copy {source}: {done.stderr.strip()[-2000:]}")


def _tree_bytes(top: Path) -> int:
    total = 0
    for parent, _, files in os.walk(top):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:  # gone while we looked: it is not in the copy's size either
                continue
    return total


class LocalBackend:
    """Starts `LocalSandbox`es in private temporary directories; keeps snapshots in
    `snapshot_dir` (by default one under the system's temporary directory)."""

    def __init__(self, snapshot_dir: Path | None = None) -> None:
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed", hint="apt-get install bubblewrap"
            )
        self.snapshot_dir = snapshot_dir or Path(tempfile.gettempdir()) / SNAPSHOT_DIR_NAME

    def start(self, spec: SandboxSpec) -> LocalSandbox:
        root = Path(tempfile.mkdtemp(prefix="qwenfix-sandbox-"))
        try:
            if spec.snapshot is None:
                (root / "workspace").mkdir()
                (root / "tmp").mkdir(mode=0o1777)
            else:
                source = self._snapshot_path(spec.snapshot)
                if source is None:
                    raise SandboxUnavailable(
                        f"snapshot {spec.snapshot!r} is missing from {self.snapshot_dir}",
                        hint="start from the image, set it up again and take a new snapshot",
                    )
                for name in WRITABLE_DIRS:
                    _copy_tree(source / name, root / name)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        box = LocalSandbox(spec, root)
        probe = box.run("true", timeout=30)
        if not probe.ok:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxUnavailable(
                f"bubblewrap cannot start here: {probe.output.strip()}",
                hint="it needs unprivileged user namespaces or root",
            )
        return box

    def stop(self, sandbox: Sandbox) -> None:
        if not isinstance(sandbox, LocalSandbox):
            raise TypeError(f"not a local sandbox: {sandbox!r}")
        shutil.rmtree(sandbox.root, ignore_errors=True)

    def snapshot(self, sandbox: Sandbox, *, labels: dict[str, str] | None = None) -> Snapshot:
        if not isinstance(sandbox, LocalSandbox):
            raise TypeError(f"not a local sandbox: {sandbox!r}")
        store = self._snapshot_store(create=True)
        if store is None:  # removed again as soon as made
            raise SandboxError(f"could not make the snapshot directory {self.snapshot_dir}")
        snapshot_id = uuid.uuid4().hex
        # Made under a dot-name and renamed whole: a half-made snapshot is never listed or
        # started from, and one left by a crash is plainly debris.
        try:
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=store))
        except OSError as exc:
            raise SandboxError(f"could not snapshot into {store}: {exc}") from exc
        try:
            for name in WRITABLE_DIRS:
                _copy_tree(sandbox.root / name, partial / name)
            snap = Snapshot(
                id=snapshot_id,
                size_bytes=_tree_bytes(partial),
                created=time.time(),
                labels=dict(labels or {}),
            )
            (partial / SNAPSHOT_META).write_text(snap.model_dump_json())
            partial.rename(store / snapshot_id)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, OSError):
                raise SandboxError(f"could not snapshot into {store}: {exc}") from exc
            raise
        log.info(
            "sandbox %s snapshotted as %s (%d MB)",
            sandbox.root.name,
            snapshot_id,
            snap.size_bytes // 1_000_000,
        )
        return snap

    def image_id(self, image: str) -> str:
        # The host's own tools are the image: nothing to tell apart.
        return "host"

    def snapshots(self) -> list[Snapshot]:
        store = self._snapshot_store(create=False)
        if store is None:
            return []
        try:
            entries = sorted(store.iterdir())
        except OSError as exc:
            raise SandboxError(f"could not list snapshots in {store}: {exc}") from exc
        found = []
        for entry in entries:
            if not SNAPSHOT_ID.fullmatch(entry.name):
                continue  # being made or removed
            try:
                snap = Snapshot.model_validate_json((entry / SNAPSHOT_META).read_bytes())
            except (OSError, ValidationError):  # removed meanwhile, or not ours
                continue
            found.append(snap.model_copy(update={"id": entry.name}))
        return found

    def remove_snapshot(self, snapshot_id: str) -> bool:
        path = self._snapshot_path(snapshot_id)
        if path is None:
            return False
        # Renamed first, so that no sandbox starts from a snapshot half gone. Sandboxes
        # hold copies: none is ever using a snapshot.
        doomed = path.with_name(f".removing-{snapshot_id}-{uuid.uuid4().hex[:8]}")
        try:
            path.rename(doomed)
        except FileNotFoundError:
            return False  # removed by someone else meanwhile
        except OSError as exc:
            raise SandboxError(f"could not remove snapshot {snapshot_id}: {exc}") from exc
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("snapshot %s removed", snapshot_id)
        return True

    def _snapshot_path(self, snapshot_id: str) -> Path | None:
        if not SNAPSHOT_ID.fullmatch(snapshot_id):
            return None
        store = self._snapshot_store(create=False)
        if store is None or not (store / snapshot_id / SNAPSHOT_META).is_file():
            return None
        return store / snapshot_id

    def _snapshot_store(self, *, create: bool) -> Path | None:
        """The snapshot directory (made on first snapshot), or None when there is none yet.
        It must be ours and private: the default sits in the shared temporary directory,
        where another user could otherwise plant snapshots for sandboxes to start from."""
        store = self.snapshot_dir
        try:
            if create:
                store.mkdir(mode=0o700, parents=True, exist_ok=True)
            found = store.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SandboxError(f"could not use the snapshot directory {store}: {exc}") from exc
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
            raise SandboxError(
                f"the snapshot directory {store} is not a directory of ours "
                f"(uid {found.st_uid}): pass LocalBackend(snapshot_dir=...)"
            )
        return store
