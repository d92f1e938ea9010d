"""Snapshots: fresh sandboxes start from a prepared one's files, and from nothing else of it.

On a real Docker engine and on real bubblewrap. Every snapshot a test takes is removed after
it, whatever happened (`kit`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from sandbox import Sandbox, SandboxBackend, SandboxError, SandboxSpec, SandboxUnavailable, Snapshot
from sandbox.docker_backend import LABEL, SNAPSHOT_LABEL, DockerBackend
from sandbox.local_backend import LocalBackend
from sandbox.protocol import CA_BUNDLE_PATH, session
from tests.conftest import SANDBOX_IMAGE

SPEC = SandboxSpec(image=SANDBOX_IMAGE, memory_mb=512)
REPO_LABELS = {"io.qwenfix.repo": "octo/demo", "io.qwenfix.setup": "abc123"}


@dataclass
class Kit:
    """A backend, and the snapshots taken through it, to be removed afterwards."""

    kind: str
    backend: SandboxBackend
    made: list[str] = field(default_factory=list)

    def snapshot(self, box: Sandbox, labels: dict[str, str] | None = None) -> Snapshot:
        snap = self.backend.snapshot(box, labels=labels)
        self.made.append(snap.id)
        return snap


def _bwrap_backend(snapshot_dir: Path) -> LocalBackend:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    return LocalBackend(snapshot_dir=snapshot_dir)


def _remove_taken(kit: Kit, request: pytest.FixtureRequest) -> None:
    for snapshot_id in kit.made:
        if not kit.backend.remove_snapshot(snapshot_id) and kit.kind == "docker":
            client: docker.DockerClient = request.getfixturevalue("docker_client")
            # Still used by a sandbox the test left (the `backend` fixture fails it for that).
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(snapshot_id, force=True)


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), "local"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    if request.param == "local":
        made = Kit("local", _bwrap_backend(tmp_path / "snapshots"))
    else:
        made = Kit("docker", request.getfixturevalue("backend"))
    yield made
    _remove_taken(made, request)


@pytest.fixture
def docker_kit(request: pytest.FixtureRequest, backend: DockerBackend) -> Iterator[Kit]:
    made = Kit("docker", backend)
    yield made
    _remove_taken(made, request)


def _run(box: Sandbox, command: str, *, as_root: bool = False) -> str:
    result = box.run(command, timeout=30, as_root=as_root)
    assert result.ok, result.output
    return result.output.strip()


SETUP = (
    "mkdir -p pkg && printf v1 > pkg/data.txt && ln -s pkg/data.txt link"
    " && printf '#!/bin/sh\\necho ran\\n' > run.sh && chmod 755 run.sh"
    " && touch -h -d '2001-02-03 04:05:06 UTC' run.sh link"
    " && mkdir -p ~/.local/lib/site && printf home > ~/.local/lib/site/marker"
    " && printf tmp > /tmp/marker"
    # A background process: files, not processes, are what a snapshot keeps.
    " && (nohup sleep 1234 >/dev/null 2>&1 &)"
)
STATE = (
    "cat pkg/data.txt ~/.local/lib/site/marker /tmp/marker; echo;"
    " readlink link; ./run.sh; stat -c '%u:%g %a %Y' run.sh pkg/data.txt link;"
    " stat -c '%u:%g %a' /tmp ~/.local; ls -A"
)
SLEEPERS = "ps -eo args | grep -c '[s]leep 1234' || true"


def test_fresh_sandboxes_have_the_files_and_stay_apart(kit: Kit) -> None:
    with session(kit.backend, SPEC) as setup:
        _run(setup, SETUP)
        state = _run(setup, STATE)
        assert state.startswith("v1hometmp\npkg/data.txt\nran\n1000:1000 755 981173106\n"), state
        if kit.kind == "docker":  # in bubblewrap nothing outlives its command
            assert _run(setup, SLEEPERS) == "1"
        snap = kit.snapshot(setup, REPO_LABELS)
        # The sandbox goes on as it was; what it does from now on is not in the snapshot.
        setup.write_file("after.txt", b"late")
        assert _run(setup, "cat pkg/data.txt after.txt") == "v1late"

    fresh = SPEC.model_copy(update={"snapshot": snap.id})
    with session(kit.backend, fresh) as one, session(kit.backend, fresh) as two:
        for box in (one, two):
            assert _run(box, STATE) == state  # owners, modes and times too
            assert _run(box, SLEEPERS) == "0"
        _run(
            one,
            "printf v2 > pkg/data.txt && rm /tmp/marker ~/.local/lib/site/marker"
            " && touch new.txt && chmod 600 run.sh",
        )
        assert _run(two, STATE) == state
    with session(kit.backend, fresh) as later:
        assert _run(later, STATE) == state


def test_a_fresh_sandbox_follows_its_own_spec_not_the_snapshotted_ones(kit: Kit) -> None:
    """Setup is online with the CA bundle and labels of its run; the sandboxes from its
    snapshot get what their own specs say, and start without a bundle too."""
    cafile = ssl.get_default_verify_paths().cafile
    assert cafile and Path(cafile).is_file()
    online = SPEC.model_copy(
        update={"network": True, "ca_bundle": cafile, "labels": {"io.qwenfix.run": "setup-1"}}
    )
    with session(kit.backend, online) as setup:
        assert int(_run(setup, "cat /proc/net/route | wc -l")) > 1
        _run(setup, "echo kept > kept.txt")
        snap = kit.snapshot(setup)
    fresh = SPEC.model_copy(
        update={
            "snapshot": snap.id,
            "pids_limit": 64,
            "ca_bundle": cafile,
            "labels": {"io.qwenfix.run": "verify-1"},
        }
    )
    with session(kit.backend, fresh) as box:
        assert _run(box, "cat kept.txt") == "kept"
        assert _run(box, "cat /proc/net/route | wc -l") == "1"  # no route: offline
        assert _run(box, f"test -s {CA_BUNDLE_PATH} && echo mounted") == "mounted"
        assert not box.run(f"echo x >> {CA_BUNDLE_PATH}", timeout=30, as_root=True).ok
        if isinstance(kit.backend, DockerBackend):
            attrs = kit.backend.client.containers.get(box.id).attrs  # type: ignore[attr-defined]
            assert attrs["HostConfig"]["NetworkMode"] == "none"
            assert attrs["HostConfig"]["Memory"] == 512 * 1024 * 1024
            assert attrs["HostConfig"]["PidsLimit"] == 64
            labels = attrs["Config"]["Labels"]
            assert labels[LABEL] == "1" and labels["io.qwenfix.run"] == "verify-1"
    with session(kit.backend, SPEC.model_copy(update={"snapshot": snap.id})) as box:
        assert _run(box, "cat kept.txt; cat /proc/net/route | wc -l") == "kept\n1"
        if isinstance(kit.backend, DockerBackend):
            # Without labels of its own, it is not taken for a sandbox of the setup's run.
            labels = kit.backend.client.containers.get(box.id).attrs["Config"]["Labels"]  # type: ignore[attr-defined]
            assert labels.get("io.qwenfix.run", "") == ""


@pytest.mark.docker
def test_root_owned_files_stay_root_owned(docker_kit: Kit) -> None:
    """What setup installs as root (system packages, site-packages) comes back as it was."""
    backend = docker_kit.backend
    with session(backend, SPEC) as setup:
        _run(
            setup,
            "mkdir -p /opt/tool && printf secret > /opt/tool/conf"
            " && chmod 640 /opt/tool/conf && chmod 750 /opt/tool"
            " && echo 'VALUE = 7' > $(python3 -c 'import site; print("
            "site.getsitepackages()[0])')/qwenfix_probe.py",
            as_root=True,
        )
        snap = docker_kit.snapshot(setup)
    with session(backend, SPEC.model_copy(update={"snapshot": snap.id})) as box:
        assert (
            _run(box, "stat -c '%u:%g %a' /opt/tool /opt/tool/conf", as_root=True)
            == "0:0 750\n0:0 640"
        )
        assert not box.run("cat /opt/tool/conf", timeout=30).ok
        assert _run(box, "python3 -c 'import qwenfix_probe; print(qwenfix_probe.VALUE)'") == "7"


def test_snapshots_are_listed_with_their_labels_and_removed_once(kit: Kit) -> None:
    spec = SPEC.model_copy(update={"labels": {"io.qwenfix.run": "setup-2"}})
    with session(kit.backend, spec) as setup:
        _run(setup, "head -c 100000 /dev/zero > blob")
        snap = kit.snapshot(setup, REPO_LABELS)
    assert snap.labels == REPO_LABELS
    assert snap.size_bytes >= 100_000 and abs(snap.created - time.time()) < 300
    listed = {found.id: found for found in kit.backend.snapshots()}
    assert listed[snap.id] == snap  # the setup sandbox's own labels are not the snapshot's
    assert Snapshot.model_validate_json(snap.model_dump_json()) == snap

    assert kit.backend.remove_snapshot(snap.id) is True
    assert kit.backend.remove_snapshot(snap.id) is False
    assert snap.id not in {found.id for found in kit.backend.snapshots()}
    with pytest.raises(SandboxUnavailable) as info:
        kit.backend.start(SPEC.model_copy(update={"snapshot": snap.id}))
    assert "snapshot" in info.value.hint


def test_removing_a_snapshot_in_use(kit: Kit) -> None:
    """Docker keeps a snapshot a running sandbox uses; bubblewrap sandboxes hold copies."""
    with session(kit.backend, SPEC) as setup:
        _run(setup, "echo kept > kept.txt")
        snap = kit.snapshot(setup)
    with session(kit.backend, SPEC.model_copy(update={"snapshot": snap.id})) as box:
        assert kit.backend.remove_snapshot(snap.id) is (kit.kind == "local")
        assert (
            _run(box, "cat kept.txt && echo more >> kept.txt && cat kept.txt") == "kept\nkept\nmore"
        )
        assert box.read_file("kept.txt") == b"kept\nmore\n"
    assert kit.backend.remove_snapshot(snap.id) is (kit.kind == "docker")


def test_missing_snapshots_and_other_things_are_not_snapshots(kit: Kit, tmp_path: Path) -> None:
    """An id names a snapshot of this backend or nothing: never another image or a path."""
    if kit.kind == "docker":
        missing = ["sha256:" + "0" * 64, "qwenfix-snapshot:nope", SANDBOX_IMAGE, ""]
    else:
        (tmp_path / "precious").mkdir()
        missing = ["0" * 32, "../precious", str(tmp_path / "precious"), ""]
    for snapshot_id in missing:
        with pytest.raises(SandboxUnavailable) as info:
            kit.backend.start(SPEC.model_copy(update={"snapshot": snapshot_id}))
        assert "set it up again" in info.value.hint
        assert kit.backend.remove_snapshot(snapshot_id) is False
    if isinstance(kit.backend, DockerBackend):
        kit.backend.client.images.get(SANDBOX_IMAGE)  # still there
    else:
        assert (tmp_path / "precious").is_dir()


@pytest.mark.docker
def test_docker_snapshot_images_are_labelled_and_keep_the_image_config(
    docker_kit: Kit, docker_client: docker.DockerClient
) -> None:
    with session(docker_kit.backend, SPEC) as setup:
        snap = docker_kit.snapshot(setup, {"io.qwenfix.repo": "octo/demo"})
    image = docker_client.images.get(snap.id)
    base = docker_client.images.get(SANDBOX_IMAGE).attrs["Config"]
    config = image.attrs["Config"]
    assert image.labels[SNAPSHOT_LABEL] == "1"
    assert any(tag.startswith("qwenfix-snapshot:") for tag in image.tags)
    assert config["Env"] == base["Env"] and config["WorkingDir"] == base["WorkingDir"]
    assert config["Cmd"] == base["Cmd"] and not config.get("Volumes")
    # Its own layer: far less than the whole image it shares with every other sandbox.
    assert 0 <= snap.size_bytes < image.attrs["Size"] // 10


def test_local_snapshot_directory_is_made_on_first_use_and_only_whole_ones_count(
    tmp_path: Path,
) -> None:
    store = tmp_path / "snaps"
    backend = _bwrap_backend(store)
    assert not store.exists() and backend.snapshots() == []
    with session(backend, SPEC) as setup:
        _run(setup, "echo hi > a.txt")
        snap = backend.snapshot(setup)
    assert store.is_dir() and (store.stat().st_mode & 0o777) == 0o700
    (store / ".partial-x").mkdir()
    shutil.copy(store / snap.id / "snapshot.json", store / ".partial-x")
    (store / ("f" * 32)).mkdir()  # no snapshot.json: not (or no longer) a snapshot
    assert [found.id for found in backend.snapshots()] == [snap.id]
    if os.getuid() == 0:  # a directory someone else made in the shared /tmp is not used
        os.chown(store, 12345, 12345)
        with pytest.raises(SandboxError, match="not a directory of ours"):
            backend.snapshots()
        os.chown(store, 0, 0)
    assert backend.remove_snapshot(snap.id) is True
