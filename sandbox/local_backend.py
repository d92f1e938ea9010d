"""Local backend: bubblewrap namespaces on this machine, for hosts without a Docker engine.

The workspace is a private directory bound at /workspace and /tmp is private too; the
host's /usr and /etc are visible read-only, nothing else of the host is (no home
directories, no sockets), the environment is rebuilt from nothing, and the network is a
private, empty namespace unless the spec allows it. Weaker than Docker: no memory or CPU
limits (only an address-space and process-count ulimit), and the host's tools are the image.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sandbox.errors import SandboxError, SandboxUnavailable
from sandbox.output import HeadTailBuffer
from sandbox.protocol import CA_BUNDLE_PATH, CommandResult, Sandbox, SandboxSpec

log = logging.getLogger(__name__)

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
}
ROOT_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")


class LocalSandbox:
    def __init__(self, spec: SandboxSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.workspace = root / "workspace"
        self.tmp = root / "tmp"
        self.network = spec.network

    def _bwrap(self, as_root: bool, workdir: str) -> list[str]:
        uid, gid = ("0", "0") if as_root else self.spec.user.split(":")
        args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for name in ROOT_LINKS:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--bind", str(self.tmp), "/tmp",
                 "--bind", str(self.workspace), self.spec.workdir, "--chdir", workdir,
                 "--uid", uid, "--gid", gid]
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
        limits = (f"ulimit -u {self.spec.pids_limit} -v {self.spec.memory_mb * 1024} "
                  f"-f {self.spec.max_file_mb * 1024} 2>/dev/null; ")
        argv = [*self._bwrap(as_root, workdir or self.spec.workdir),
                "bash", "-c", limits + command]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**BASE_ENV, **(env or {})}, start_new_session=True,
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
            command=command, exit_code=None if timed_out else code, output=buffer.text(),
            timed_out=timed_out, truncated=buffer.truncated, output_bytes=buffer.total,
            duration_s=round(time.monotonic() - started, 3))

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


class LocalBackend:
    """Starts `LocalSandbox`es in private temporary directories."""

    def __init__(self) -> None:
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable("bubblewrap is not installed",
                                     hint="apt-get install bubblewrap")

    def start(self, spec: SandboxSpec) -> LocalSandbox:
        root = Path(tempfile.mkdtemp(prefix="qwenfix-sandbox-"))
        (root / "workspace").mkdir()
        (root / "tmp").mkdir(mode=0o1777)
        box = LocalSandbox(spec, root)
        probe = box.run("true", timeout=30)
        if not probe.ok:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxUnavailable(f"bubblewrap cannot start here: {probe.output.strip()}",
                                     hint="it needs unprivileged user namespaces or root")
        return box

    def stop(self, sandbox: Sandbox) -> None:
        if not isinstance(sandbox, LocalSandbox):
            raise TypeError(f"not a local sandbox: {sandbox!r}")
        shutil.rmtree(sandbox.root, ignore_errors=True)
