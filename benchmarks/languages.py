"""What each ecosystem costs: its sandbox image (build time from nothing, size over the
base), its setup, and a whole fix job on its example repository (examples/languages), the
first one setting up and snapshotting, the second starting from that snapshot.

    python -m benchmarks.languages [--only node-test,jest,go,rust] [--no-build]

The build is timed under a name of its own with Docker's layer cache off (it needs
Debian's mirror), then removed; --no-build leaves it out. The jobs use the scripted model
over real HTTP with the fix that is known to be right, so the figures are the harness's
and the toolchain's, not a model's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.verdict import committed_copy
from sandbox.docker_backend import DockerBackend
from tests.fakes.model_server import ScriptedModelServer
from workers.engine import git as gitops
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.environment import choose
from workers.engine.fix import FixRequest, run_fix
from workers.engine.llm.client import OpenAICompatibleModel
from workers.engine.prepared import KEY_LABEL, setup_key
from workers.engine.repo_config import load_repo_config
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "languages"
BUILD = ROOT / "scripts" / "build-ecosystem-image.sh"
BASE = "qwenfix-sandbox:py3.13"
CASES = {
    # example -> (ecosystems of its image, the file with the bug)
    "node-test": ("node", "calc.js"),
    "jest": ("node", "calc.js"),
    "go": ("go", "calc.go"),
    "rust": ("rust", "src/lib.rs"),
}
ISSUE = "double() is wrong: double(2) gives 5, it should give 4."


def _size(image: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", image],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def _ensure(ecosystems: str) -> str:
    """The image the jobs use, built if missing (as the tests do); its tag."""
    subprocess.run(["bash", str(BUILD), ecosystems], check=True, capture_output=True)
    return subprocess.run(
        ["bash", str(BUILD), ecosystems, "--print-tag"], check=True, capture_output=True, text=True
    ).stdout.strip()


def build(ecosystems: str, timed: bool) -> dict[str, float]:
    """The size of the image over its base; with `timed`, a build from nothing (its base
    present) under a name of its own, timed, then removed."""
    figures = {"size_mb": (_size(_ensure(ecosystems)) - _size(BASE)) / 1e6}
    if not timed:
        return figures
    env = {**os.environ, "QWENFIX_IMAGE_REPO": "qwenfix-bench-image", "QWENFIX_NO_CACHE": "1"}
    started = time.perf_counter()
    subprocess.run(["bash", str(BUILD), ecosystems], check=True, capture_output=True, env=env)
    figures["build_s"] = time.perf_counter() - started
    subprocess.run(
        ["docker", "rmi", "-f", f"qwenfix-bench-image:{ecosystems}"],
        check=True,
        capture_output=True,
    )
    return figures


def _steps(path: str) -> list[dict[str, Any]]:
    def call(name: str, **arguments: Any) -> dict[str, Any]:
        return {"tool_calls": [{"name": name, "arguments": arguments}]}

    return [
        call("str_replace", path=path, old_str="x + x + 1", new_str="x + x"),
        call("submit", summary="double() added one too many.", title="Fix double()"),
    ]


def jobs(name: str, work: Path) -> dict[str, float]:
    """The first job (setup, snapshot) and the second (from the snapshot), whole."""
    _, path = CASES[name]
    repo = committed_copy(EXAMPLES / name, work / name)
    settings = WorkerSettings(
        setup_cache=True,
        sandbox_memory_mb=2048,
        trajectory_dir=work / "trajectories",
        test_timeout_s=600,
    )
    backend = DockerBackend()
    base = gitops.resolve(repo, "HEAD")
    config = load_repo_config(
        gitops.list_files(repo, base), lambda p: gitops.read_blob(repo, base, p)
    )
    image = choose(config, settings, backend).image
    key = setup_key(repo, base, config, image=image)
    for snap in backend.snapshots():  # the first job must set up
        if snap.labels.get(KEY_LABEL) == key:
            backend.remove_snapshot(snap.id)
    figures: dict[str, float] = {}
    for job in ("first", "second"):
        with (
            ScriptedModelServer({"steps": _steps(path)}) as server,
            OpenAICompatibleModel(base_url=server.base_url, model="qwen") as model,
        ):
            started = time.perf_counter()
            result = run_fix(
                FixRequest(repo=repo, issue=ISSUE, issue_number=1),
                model=model,
                backend=backend,
                settings=settings,
            )
            figures[f"{job}_job_s"] = time.perf_counter() - started
        if result.status != "resolved":
            raise SystemExit(f"{name}: the {job} job was {result.status}: {result.reason}")
        events = read_trajectory(Path(result.trajectory or ""))
        for event in events:
            if event["event"] == "setup":
                figures["setup_s"] = event["duration_s"]
            if event["event"] == "tests_before":
                figures[f"{job}_baseline_tests_s"] = event["duration_s"]
        reused = any(e["event"] == "setup_reused" for e in events)
        if (job == "second") != reused:
            raise SystemExit(f"{name}: the {job} job {'did not reuse' if not reused else 'reused'}")
    for snap in backend.snapshots():
        if snap.labels.get(KEY_LABEL) == key:
            backend.remove_snapshot(snap.id)
    return figures


def run(only: list[str] | None = None, build_images: bool = True) -> dict[str, Any]:
    results: dict[str, Any] = {}
    built: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="qwenfix-bench-languages-") as tmp:
        for name in only or list(CASES):
            ecosystems, _ = CASES[name]
            if ecosystems not in built:
                built[ecosystems] = build(ecosystems, timed=build_images)
            results[name] = {"image": ecosystems, **built[ecosystems], **jobs(name, Path(tmp))}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--no-build", action="store_true", help="leave out the timed build")
    args = parser.parse_args()
    print(json.dumps(run(args.only.split(","), not args.no_build), indent=2))


if __name__ == "__main__":
    main()
