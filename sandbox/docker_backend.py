"""Docker backend: one container per run, the repository copied in, limits enforced.

The container's main process is an idle `sleep` under docker-init; every command is a
`docker exec`. A command that outlives its timeout is killed together with everything it
started (found by a per-command marker in the environment), and the caller gets a result
with `timed_out=True` instead of an exception.

A snapshot is `docker commit` of a sandbox: an image in the `qwenfix-snapshot` repository
whose top layer is the sandbox's writable layer, so starting from it costs what starting
from the base image does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import posixpath
import shlex
import tarfile
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.models.images import Image

from sandbox.errors import ImageMissing, SandboxError, SandboxUnavailable
from sandbox.output import HeadTailBuffer
from sandbox.protocol import CA_BUNDLE_PATH, CommandResult, Sandbox, SandboxSpec, Snapshot

log = logging.getLogger(__name__)

MARKER_VAR = "QWENFIX_CMD_ID"
LABEL = "io.qwenfix.sandbox"
SNAPSHOT_LABEL = "io.qwenfix.snapshot"
SNAPSHOT_REPOSITORY = "qwenfix-snapshot"
# Capabilities a repository's tests never need, dropped even in the root setup phase.
DROPPED_CAPS = ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"]
KILL_GRACE_S = 5.0
DISK_CHECK_S = 1.0
# What talking to the engine raises: docker-py's own errors, and requests' when the engine
# is gone altogether (its socket refused or missing while dockerd restarts).
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _engine_time(stamp: str) -> float:
    """Epoch seconds of the engine's RFC 3339 times (nanoseconds, `Z`): ValueError if not."""
    when = datetime.fromisoformat(stamp)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _is_snapshot(image: Image) -> bool:
    return (image.labels or {}).get(SNAPSHOT_LABEL) == "1"


def _as_snapshot(image: Image) -> Snapshot:
    # Blank values are the setup sandbox's own labels, blanked when it was committed.
    labels = {
        key: value
        for key, value in (image.labels or {}).items()
        if value and key not in (SNAPSHOT_LABEL, LABEL)
    }
    try:
        created = _engine_time(str(image.attrs.get("Created", "")))
    except ValueError:
        created = 0.0
    # The commit's own layer: what the snapshot costs on disk beyond the image it shares.
    layers = image.history()
    size = int(layers[0].get("Size") or 0) if layers else int(image.attrs.get("Size") or 0)
    return Snapshot(id=str(image.id), size_bytes=size, created=created, labels=labels)


def _kill_script(marker: str) -> str:
    # Scan a few times: a fork bomb can create processes while the first pass runs.
    match = shlex.quote(f"{MARKER_VAR}={marker}")
    return (
        "for pass in 1 2 3; do for p in /proc/[0-9]*; do "
        f"grep -qzx {match} $p/environ 2>/dev/null && kill -9 ${{p#/proc/}} 2>/dev/null; "
        "done; done; true"
    )


class DockerSandbox:
    def __init__(self, client: docker.DockerClient, container: Container, spec: SandboxSpec):
        self.spec = spec
        self._client = client
        self._container = container
        self._disk_checked = 0.0

    @property
    def id(self) -> str:
        return str(self._container.id)

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
        marker = uuid.uuid4().hex
        environment = {**(env or {}), MARKER_VAR: marker}
        user = "0:0" if as_root else self.spec.user
        api = self._client.api
        started = time.monotonic()
        try:
            exec_id = api.exec_create(
                self.id,
                # One stream at the source: Docker's separate stdout/stderr frames would
                # lose the order in which a command printed its output and its errors.
                ["bash", "-c", f"exec 2>&1\n{command}"],
                user=user,
                environment=environment,
                workdir=workdir or self.spec.workdir,
            )["Id"]
            stream = api.exec_start(exec_id, stream=True)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not start command in sandbox: {exc}") from exc

        buffer = HeadTailBuffer(max_output_bytes)

        def pump() -> None:
            try:
                for chunk in stream:
                    buffer.feed(chunk)
            except Exception:  # the stream breaks when we kill the command; output so far stands
                log.debug("output stream ended abruptly", exc_info=True)
            finally:
                # The exec's hijacked socket is ours to close (docker-py leaves it open
                # until garbage collection: one descriptor per command in a long worker;
                # its response, which holds it, is closed too).
                with contextlib.suppress(OSError, AttributeError):
                    stream.close()
                    stream._response.close()

        reader = threading.Thread(target=pump, name="sandbox-output", daemon=True)
        reader.start()
        deadline, disk_exceeded = started + timeout, False
        # Waiting in slices: the disk is looked at every second while the command runs.
        while reader.is_alive() and time.monotonic() < deadline and not disk_exceeded:
            reader.join(min(DISK_CHECK_S, max(deadline - time.monotonic(), 0.0)))
            disk_exceeded = reader.is_alive() and self._over_disk()
        killed = reader.is_alive()
        if killed:
            self._kill(marker, user)
            reader.join(KILL_GRACE_S)
        elif time.monotonic() - self._disk_checked >= DISK_CHECK_S:
            # Quick commands too, at most once a second: many small writes add up.
            disk_exceeded = self._over_disk()
        try:
            exit_code = None if killed else api.exec_inspect(exec_id).get("ExitCode")
        except ENGINE_ERRORS as exc:  # the engine went away while the command ran
            raise SandboxError(f"lost the sandbox while running a command: {exc}") from exc
        output = buffer.text()
        if disk_exceeded:
            output += (
                f"\n[the sandbox has written more than {self.spec.max_disk_mb} MB to "
                f"disk{'; the command was stopped' if killed else ''}; delete files "
                "to go on]"
            )
        return CommandResult(
            command=command,
            exit_code=exit_code,
            output=output,
            timed_out=killed and not disk_exceeded,
            disk_exceeded=disk_exceeded,
            truncated=buffer.truncated,
            output_bytes=buffer.total,
            duration_s=round(time.monotonic() - started, 3),
        )

    def _over_disk(self) -> bool:
        """Whether the container's writable layer holds more than `max_disk_mb`. (Docker
        has no disk quota on the usual overlay2-on-ext4; the daemon sizes the layer, some
        tens of milliseconds for a repository's worth of files.)"""
        self._disk_checked = time.monotonic()
        try:
            found = self._client.api.containers(all=True, size=True, filters={"id": self.id})
        except ENGINE_ERRORS:
            return False  # the command's own result will say what happened to the engine
        used = int(found[0].get("SizeRw") or 0) if found else 0
        return used > self.spec.max_disk_mb * 1024 * 1024

    def _kill(self, marker: str, user: str) -> None:
        try:
            self._container.exec_run(["bash", "-c", _kill_script(marker)], user="0:0")
            if user != "0:0":
                # Also whatever the command detached from its environment: in the agent
                # phase one command runs at a time, so nothing of the user's should survive.
                self._container.exec_run(["bash", "-c", "kill -9 -1"], user=user)
        except ENGINE_ERRORS:
            log.warning("could not kill timed-out command in %s", self.id, exc_info=True)

    def read_file(self, path: str) -> bytes:
        full = self._abs(path)
        try:
            chunks, _ = self._container.get_archive(full)
        except docker.errors.NotFound as exc:
            raise FileNotFoundError(path) from exc
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not read {path}: {exc}") from exc
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise IsADirectoryError(path)
            handle = tar.extractfile(member)
            if handle is None:
                raise SandboxError(f"could not read {path}")
            return handle.read()

    def write_file(self, path: str, data: bytes) -> None:
        full = self._abs(path)
        parent, name = posixpath.split(full)
        uid, gid = (int(x) for x in self.spec.user.split(":"))
        mkdir = self.run(f"mkdir -p {shlex.quote(parent)}", timeout=30, max_output_bytes=10_000)
        if not mkdir.ok:
            raise SandboxError(f"could not create {parent}: {mkdir.output.strip()}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), uid, gid, 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.upload_tar(buf.getvalue(), parent)

    def upload_tar(self, tar_bytes: bytes, dest: str) -> None:
        try:
            if not self._container.put_archive(self._abs(dest), tar_bytes):
                raise SandboxError(f"could not copy files to {dest}")
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not copy files to {dest}: {exc}") from exc

    def disable_network(self) -> None:
        try:
            self._container.reload()
            networks = self._container.attrs["NetworkSettings"]["Networks"] or {}
            for name in list(networks):
                if name == "none":
                    continue
                self._client.networks.get(name).disconnect(self._container, force=True)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not take the sandbox off the network: {exc}") from exc

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.spec.workdir, path))


class DockerBackend:
    """Starts and stops `DockerSandbox`es. Holds the only Docker client of a run."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as exc:
                self._client = None
                raise SandboxUnavailable(
                    f"no Docker engine answers: {exc}",
                    hint="start dockerd, or run scripts/ensure-docker.sh",
                ) from exc
        return self._client

    def start(self, spec: SandboxSpec) -> DockerSandbox:
        client = self.client
        image = spec.image
        try:
            if spec.snapshot is not None:
                found = self._snapshot_image(spec.snapshot)
                if found is None:
                    raise SandboxUnavailable(
                        f"snapshot {spec.snapshot!r} of {spec.image} is missing",
                        hint="start from the image, set it up again and take a new snapshot",
                    )
                image = str(found.id)
            else:
                self.image_id(spec.image)
        except ENGINE_ERRORS as exc:  # the client was fine once; the engine went away since
            raise SandboxUnavailable(
                f"the Docker engine stopped answering: {exc}",
                hint="start dockerd, or run scripts/ensure-docker.sh",
            ) from exc
        kwargs: dict[str, Any] = {
            "command": ["sleep", "infinity"],
            "init": True,
            "detach": True,
            "user": "0:0",
            "working_dir": spec.workdir,
            "network_mode": "bridge" if spec.network else "none",
            "mem_limit": f"{spec.memory_mb}m",
            "memswap_limit": f"{spec.memory_mb}m",
            "nano_cpus": int(spec.cpus * 1e9),
            "pids_limit": spec.pids_limit,
            "ulimits": [
                docker.types.Ulimit(
                    name="fsize",
                    soft=spec.max_file_mb * 1024 * 1024,
                    hard=spec.max_file_mb * 1024 * 1024,
                )
            ],
            "cap_drop": DROPPED_CAPS,
            "security_opt": ["no-new-privileges"],
            "labels": {LABEL: "1", **spec.labels},
        }
        if spec.ca_bundle:
            # A mount, not `volumes=`: docker-py would also declare a VOLUME there, which a
            # snapshot keeps, and every container from it would fail over the bundle's file.
            kwargs["mounts"] = [
                docker.types.Mount(CA_BUNDLE_PATH, spec.ca_bundle, type="bind", read_only=True)
            ]
        source = spec.image if spec.snapshot is None else f"snapshot {image[:19]} of {spec.image}"
        try:
            container = client.containers.run(image, **kwargs)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not start sandbox from {source}: {exc}") from exc
        log.info("sandbox %s started from %s", container.short_id, source)
        return DockerSandbox(client, container, spec)

    def snapshot(self, sandbox: Sandbox, *, labels: dict[str, str] | None = None) -> Snapshot:
        if not isinstance(sandbox, DockerSandbox):
            raise TypeError(f"not a Docker sandbox: {sandbox!r}")
        client = self.client
        container = sandbox._container
        try:
            container.reload()
            config = container.attrs["Config"]
            base = client.images.get(container.attrs["Image"])
            base_config = base.attrs.get("Config") or {}
            # A commit keeps the container's labels, and every container started from the
            # image would inherit them: blank those the sandbox got from its own spec (a
            # run's id, say) and those of the snapshot it started from, so that a snapshot
            # has the labels it is given and no other, misleading neither `snapshots()`
            # nor later sandboxes. An image's own labels stay.
            base_labels = base_config.get("Labels") or {}
            started_from_snapshot = base_labels.get(SNAPSHOT_LABEL) == "1"
            own = {
                key: ""
                for key, value in (config.get("Labels") or {}).items()
                if base_labels.get(key) != value or started_from_snapshot
            }
            conf = {
                "Labels": {**own, SNAPSHOT_LABEL: "1", **(labels or {})},
                # The image's own command and user, not the idle `sleep` as root that `start`
                # asks for (the engine fills what is empty, and ENV and WORKDIR, from the
                # container: they are the image's, as `start` sets neither).
                "Cmd": base_config.get("Cmd"),
                "Entrypoint": base_config.get("Entrypoint"),
                "User": base_config.get("User") or "",
            }
            # Paused while the layer is copied, so that a background process cannot change
            # files half-way through: the snapshot is one moment's state.
            image = container.commit(
                repository=SNAPSHOT_REPOSITORY,
                tag=uuid.uuid4().hex,
                message="qwenfix sandbox snapshot",
                pause=True,
                conf=conf,
            )
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not snapshot sandbox {sandbox.id[:12]}: {exc}") from exc
        snap = _as_snapshot(image)
        log.info(
            "sandbox %s snapshotted as %s (%d MB)",
            sandbox.id[:12],
            snap.id[:19],
            snap.size_bytes // 1_000_000,
        )
        return snap

    def image_id(self, image: str) -> str:
        try:
            return str(self.client.images.get(image).id)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(
                f"sandbox image {image!r} is missing",
                hint="build it with scripts/build-sandbox-image.sh or docker build deploy/sandbox",
                image=image,
            ) from exc
        except ENGINE_ERRORS as exc:
            raise SandboxUnavailable(
                f"the Docker engine stopped answering: {exc}",
                hint="start dockerd, or run scripts/ensure-docker.sh",
            ) from exc

    def snapshots(self) -> list[Snapshot]:
        try:
            images = self.client.images.list(filters={"label": f"{SNAPSHOT_LABEL}=1"})
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not list snapshots: {exc}") from exc
        return [_as_snapshot(image) for image in images]

    def remove_snapshot(self, snapshot_id: str) -> bool:
        client = self.client
        try:
            image = self._snapshot_image(snapshot_id)
            if image is None:
                return False
            client.images.remove(str(image.id), force=False, noprune=False)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # a container uses it, or it has another tag too
                log.info("snapshot %s is in use: %s", snapshot_id[:19], exc.explanation)
                return False
            raise SandboxError(f"could not remove snapshot {snapshot_id}: {exc}") from exc
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"could not remove snapshot {snapshot_id}: {exc}") from exc
        log.info("snapshot %s removed", snapshot_id[:19])
        return True

    def _snapshot_image(self, snapshot_id: str) -> Image | None:
        """The snapshot's image, or None when there is none or the image is not a
        snapshot: an id is never a way to run, or remove, some other image."""
        if not snapshot_id:
            return None
        try:
            image = self.client.images.get(snapshot_id)
        except docker.errors.ImageNotFound:
            return None
        return image if _is_snapshot(image) else None

    def prune(self, older_than_s: float) -> list[str]:
        """Remove sandboxes older than `older_than_s`: left by a worker that was killed
        before it could clean up. Give it more than the longest job can take."""
        removed = []
        now = time.time()
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            try:
                age = now - _engine_time(str(container.attrs.get("Created", "")))
            except ValueError:
                continue
            if age >= older_than_s:
                container.remove(force=True)
                removed.append(str(container.short_id))
        if removed:
            log.info("removed %d stale sandbox(es): %s", len(removed), ", ".join(removed))
        return removed

    def stop(self, sandbox: Sandbox) -> None:
        if not isinstance(sandbox, DockerSandbox):
            raise TypeError(f"not a Docker sandbox: {sandbox!r}")
        try:
            sandbox._container.remove(force=True)
            log.info("sandbox %s removed", sandbox.id[:12])
        except docker.errors.NotFound:
            pass
        except ENGINE_ERRORS as exc:
            # Cleanup runs in `finally`: raising here would hide the run's own error. A
            # worker prunes what is left when it starts (`prune`).
            log.warning("could not remove sandbox %s: %s", sandbox.id[:12], exc)
