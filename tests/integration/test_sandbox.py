"""The sandboxes: Docker on a real engine, and bubblewrap on this machine."""

from __future__ import annotations

import io
import ssl
import tarfile
import time
from pathlib import Path

import docker
import pytest

from sandbox import SandboxBackend, SandboxSpec, SandboxUnavailable
from sandbox.docker_backend import LABEL, DockerBackend
from sandbox.local_backend import LocalBackend
from sandbox.protocol import CA_BUNDLE_PATH, ca_environment, session
from tests.conftest import SANDBOX_IMAGE

SPEC = SandboxSpec(image=SANDBOX_IMAGE, memory_mb=512)


@pytest.fixture(params=["docker", "local"])
def any_backend(request: pytest.FixtureRequest) -> SandboxBackend:
    """The behaviour every backend promises, on each of them."""
    if request.param == "local":
        return LocalBackend()
    backend: SandboxBackend = request.getfixturevalue("backend")
    return backend


def test_commands_run_as_non_root_with_exit_codes(any_backend: SandboxBackend) -> None:
    with session(any_backend, SPEC) as sb:
        result = sb.run("id -u; echo oops >&2; exit 3", timeout=30)
        assert result.exit_code == 3 and not result.ok
        assert result.output.split() == ["1000", "oops"]
        assert sb.run("id -u", timeout=30, as_root=True).output.strip() == "0"


def test_hung_command_and_its_children_are_killed_at_the_timeout(
    any_backend: SandboxBackend,
) -> None:
    with session(any_backend, SPEC) as sb:
        result = sb.run("sleep 600 & sleep 600; echo unreachable", timeout=2)
        assert result.timed_out and result.exit_code is None
        assert "unreachable" not in result.output
        left = sb.run("ps -eo user,args | grep '[s]leep 600' || true", timeout=30)
        assert left.output.strip() == ""
        assert sb.run("echo alive", timeout=30).output.strip() == "alive"


def test_root_commands_are_killed_without_killing_the_container(
    any_backend: SandboxBackend,
) -> None:
    with session(any_backend, SPEC) as sb:
        result = sb.run("sleep 600", timeout=1, as_root=True)
        assert result.timed_out
        assert sb.run("echo alive", timeout=30).ok


def test_huge_output_keeps_head_and_tail(any_backend: SandboxBackend) -> None:
    with session(any_backend, SPEC) as sb:
        result = sb.run(
            "echo FIRST; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo LAST",
            timeout=60,
            max_output_bytes=10_000,
        )
        assert result.truncated and result.output_bytes > 20_000_000
        assert result.output.startswith("FIRST") and result.output.rstrip().endswith("LAST")
        assert len(result.output) < 12_000


def test_files_round_trip_with_sandbox_ownership(any_backend: SandboxBackend) -> None:
    with session(any_backend, SPEC) as sb:
        sb.write_file("deep/dir/a.txt", "héllo\n".encode())
        assert sb.read_file("deep/dir/a.txt") == "héllo\n".encode()
        owner = sb.run("stat -c %u deep/dir/a.txt deep/dir", timeout=30).output.split()
        assert owner == ["1000", "1000"]
        with pytest.raises(FileNotFoundError):
            sb.read_file("missing.txt")
        with pytest.raises(IsADirectoryError):
            sb.read_file("deep")


def test_upload_tar_keeps_modes(any_backend: SandboxBackend) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("run.sh")
        data = b"#!/bin/sh\necho ran\n"
        info.size, info.mode, info.uid, info.gid = len(data), 0o755, 1000, 1000
        tar.addfile(info, io.BytesIO(data))
    with session(any_backend, SPEC) as sb:
        sb.upload_tar(buf.getvalue(), "/workspace")
        assert sb.run("./run.sh", timeout=30).output.strip() == "ran"


def test_no_network_by_default(any_backend: SandboxBackend) -> None:
    with session(any_backend, SPEC) as sb:
        probe = "import socket; socket.create_connection(('1.1.1.1', 53), 3)"
        result = sb.run(f'python3 -c "{probe}"', timeout=30)
        assert not result.ok
        assert "unreachable" in result.output.lower() or "errno" in result.output.lower()


def test_network_can_be_dropped_after_setup(backend: DockerBackend) -> None:
    spec = SPEC.model_copy(update={"network": True})
    with session(backend, spec) as sb:
        routes = sb.run("cat /proc/net/route | wc -l", timeout=30).output.strip()
        assert int(routes) > 1  # a default route exists while online
        sb.disable_network()
        assert sb.run("cat /proc/net/route | wc -l", timeout=30).output.strip() == "1"


def test_ca_bundle_is_mounted_read_only_and_named_in_env(any_backend: SandboxBackend) -> None:
    cafile = ssl.get_default_verify_paths().cafile
    assert cafile and Path(cafile).is_file()
    spec = SPEC.model_copy(update={"ca_bundle": cafile})
    env = ca_environment(spec)
    assert set(env) == {"SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"}
    with session(any_backend, spec) as sb:
        assert sb.run(f"test -s {CA_BUNDLE_PATH}", timeout=30).ok
        assert not sb.run(f"echo x >> {CA_BUNDLE_PATH}", timeout=30, as_root=True).ok
        assert sb.run("echo $SSL_CERT_FILE", timeout=30, env=env).output.strip() == CA_BUNDLE_PATH


def test_memory_and_pid_limits_apply(
    backend: DockerBackend, docker_client: docker.DockerClient
) -> None:
    with session(backend, SPEC.model_copy(update={"pids_limit": 64})) as sb:
        attrs = docker_client.api.inspect_container(sb.id)["HostConfig"]  # type: ignore[attr-defined]
        assert attrs["Memory"] == 512 * 1024 * 1024
        assert attrs["PidsLimit"] == 64
        script = (
            "import os, time\n"
            "n = 0\n"
            "try:\n"
            "    while n < 200:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30); os._exit(0)\n"
            "        n += 1\n"
            "except BlockingIOError:\n"
            "    print('limited at', n)\n"
        )
        sb.write_file("forker.py", script.encode())
        fork = sb.run("python forker.py", timeout=20)
        words = fork.output.split()
        assert words[:2] == ["limited", "at"] and int(words[2]) < 64


def test_a_runaway_write_stops_at_the_file_size_limit(any_backend: SandboxBackend) -> None:
    """A command writing without end gets SIGXFSZ at the limit; the sandbox goes on."""
    with session(any_backend, SPEC.model_copy(update={"max_file_mb": 8})) as sb:
        wrote = sb.run(
            "head -c 64M /dev/zero > big.bin; echo exit=$?; stat -c %s big.bin", timeout=60
        )
        assert "exit=0" not in wrote.output
        assert int(wrote.output.split()[-1]) <= 8 * 1024 * 1024
        assert sb.run("rm big.bin && echo alive", timeout=30).output.strip() == "alive"


def test_a_sandbox_filling_its_disk_is_stopped_and_can_make_room(backend: DockerBackend) -> None:
    """Many files, each under the file-size cap: the total is what stops them."""
    spec = SPEC.model_copy(update={"max_disk_mb": 64, "max_file_mb": 16})
    with session(backend, spec) as sb:
        filling = sb.run(
            "for i in $(seq 64); do head -c 8M /dev/zero > fill$i.bin; "
            "sleep 0.1; done; echo finished",
            timeout=120,
        )
        assert filling.disk_exceeded and not filling.ok and not filling.timed_out
        assert "finished" not in filling.output
        assert "more than 64 MB" in filling.output and "delete files" in filling.output
        written = int(sb.run("ls fill*.bin | wc -l", timeout=30).output.split()[0])
        assert written < 30, f"{written} files of 8 MB were written before the stop"
        freed = sb.run("rm -f fill*.bin && echo room", timeout=30)
        assert freed.output.strip().endswith("room")
        time.sleep(1.1)  # the next look at the disk
        assert sb.run("echo fine", timeout=30).ok


def test_container_is_removed_when_the_body_raises(
    backend: DockerBackend, docker_client: docker.DockerClient
) -> None:
    with pytest.raises(RuntimeError), session(backend, SPEC) as sb:
        container_id = sb.id  # type: ignore[attr-defined]
        raise RuntimeError("boom")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container_id)
    assert not docker_client.containers.list(all=True, filters={"label": LABEL, "id": container_id})


def test_missing_image_says_how_to_build_it(backend: DockerBackend) -> None:
    with pytest.raises(SandboxUnavailable) as info:
        backend.start(SandboxSpec(image="qwenfix-no-such-image:0"))
    assert "build-sandbox-image" in info.value.hint


def test_unreachable_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable) as info:
        DockerBackend().start(SPEC)
    assert "dockerd" in info.value.hint


def test_prune_removes_only_sandboxes_older_than_the_limit(
    backend: DockerBackend, docker_client: docker.DockerClient
) -> None:
    box = backend.start(SPEC)
    try:
        assert box.id[:10] not in "".join(backend.prune(older_than_s=3600))  # type: ignore[attr-defined]
        docker_client.containers.get(box.id)  # type: ignore[attr-defined]
        removed = backend.prune(older_than_s=0)
        assert any(box.id.startswith(short) for short in removed)  # type: ignore[attr-defined]
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(box.id)  # type: ignore[attr-defined]
    finally:
        backend.stop(box)
