"""What the honest verdict costs, next to what it replaces.

- The verdict on the demo repository's fix: a fresh sandbox from the setup snapshot, the
  change and the base commit's tests laid in, the tests run. Next to it, the in-sandbox
  verdict it replaced (the same tests in the agent's own sandbox), and the test run itself,
  so that what the fresh sandbox adds is plain.
- A repository's second job, from the setup snapshot, next to its first, which runs setup
  (`pip install` through the network's proxy) and takes the snapshot: from "start" to a
  sandbox ready for the baseline tests.

    python -m benchmarks.verdict [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.docker_backend import DockerBackend
from workers.engine import git as gitops
from workers.engine.agent.trajectory import Trajectory
from workers.engine.change import capture_change
from workers.engine.prepared import KEY_LABEL, working_sandbox
from workers.engine.repo_config import RepoConfig
from workers.engine.verdict import Judge
from workers.engine.verify import run_tests
from workers.settings import WorkerSettings

IMAGE = "qwenfix-sandbox:1"
DEMO = Path(__file__).resolve().parent.parent / "examples" / "calculator"
FIX = (
    '    if not values:\n        raise ValueError("mean of no values")\n'
    "    return total(values) / len(values)"
)
SETUP = "pip install --no-deps six==1.16.0 iniconfig==2.0.0"


def committed_copy(source: Path, target: Path) -> Path:
    """`source` copied to `target` as a git repository of one commit."""
    shutil.copytree(source, target)
    env = {
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@localhost",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@localhost",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        gitops.git(target, *args, env=env)
    return target


def verdict(runs: int, work: Path) -> dict[str, float]:
    repo = committed_copy(DEMO, work / "demo")
    config = RepoConfig(test="python -m pytest -q")
    settings = WorkerSettings(
        sandbox_image=IMAGE,
        setup_cache=False,
        sandbox_memory_mb=1024,
        trajectory_dir=work / "trajectories",
    )
    backend, base = DockerBackend(), gitops.resolve(repo, "HEAD")
    fresh, inside, tests = [], [], []
    with (
        Trajectory(work / "verdict.jsonl") as trajectory,
        working_sandbox(
            backend,
            repo,
            base,
            config=config,
            settings=settings,
            trajectory=trajectory,
            run_label="bench",
        ) as (sb, prepared),
    ):
        baseline = run_tests(sb, config.test or "", timeout=300, label="before")
        old = sb.read_file("calculator.py").decode()
        sb.write_file(
            "calculator.py",
            old.replace("    return total(values) / (len(values) - 1)", FIX).encode(),
        )
        for n in range(runs + 1):  # the first of each is a warm-up
            started = time.perf_counter()
            change = capture_change(
                sb, repo, base, leave_out=prepared.leftovers, workdir=sb.spec.workdir
            )
            judgement = Judge(
                backend=backend,
                prepared=prepared,
                repo=repo,
                config=config,
                settings=settings,
                baseline=baseline,
                issue_text="",
            )(change, label=f"bench-{n}")
            elapsed = time.perf_counter() - started
            if not judgement.resolved or judgement.judged is None:
                raise SystemExit(f"the demo fix was not resolved: {judgement.reason}")
            started = time.perf_counter()
            in_sandbox = run_tests(sb, config.test or "", timeout=300, label=f"in-{n}")
            inside_s = time.perf_counter() - started
            if n:
                fresh.append(elapsed)
                inside.append(inside_s)
                tests.append(judgement.judged.duration_s)
    return {
        "fresh_sandbox_verdict_s": statistics.median(fresh),
        "in_sandbox_verdict_s": statistics.median(inside),
        "test_run_s": statistics.median(tests),
        "fresh_sandbox_overhead_s": statistics.median(
            f - t for f, t in zip(fresh, tests, strict=True)
        ),
        "in_sandbox_passed": float(in_sandbox.passed),
    }


def setup_reuse(runs: int, work: Path) -> dict[str, float]:
    repo = committed_copy(DEMO, work / "with-setup")
    config = RepoConfig(test="python -m pytest -q", setup=SETUP)
    backend, base = DockerBackend(), gitops.resolve(repo, "HEAD")
    first: list[float] = []
    second: list[float] = []
    for n in range(runs):
        # A key of its own for each round: the first job of a round always sets up.
        settings = WorkerSettings(
            sandbox_image=IMAGE, setup_cache=True, sandbox_memory_mb=1024, trajectory_dir=work / "t"
        )
        round_config = config.model_copy(update={"setup": f"{SETUP} # round {n}"})
        for samples in (first, second):
            started = time.perf_counter()
            with (
                Trajectory(work / f"setup-{n}.jsonl") as trajectory,
                working_sandbox(
                    backend,
                    repo,
                    base,
                    config=round_config,
                    settings=settings,
                    trajectory=trajectory,
                    run_label="bench",
                ) as (sb, _),
            ):
                ready = sb.run("python -c 'import six, iniconfig'", timeout=60)
                samples.append(time.perf_counter() - started)
            if not ready.ok:
                raise SystemExit(f"setup did not install its packages: {ready.output}")
    for snap in backend.snapshots():
        if KEY_LABEL in snap.labels and snap.labels.get("io.qwenfix.run") == "bench":
            backend.remove_snapshot(snap.id)
    return {
        "first_job_setup_s": statistics.median(first),
        "second_job_from_snapshot_s": statistics.median(second),
    }


def run(runs: int = 5) -> dict[str, Any]:
    subprocess.run(["docker", "image", "inspect", IMAGE], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="qwenfix-bench-verdict-") as tmp:
        work = Path(tmp)
        return {**verdict(runs, work), **setup_reuse(max(1, runs // 2), work)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(run(parser.parse_args().runs), indent=2))


if __name__ == "__main__":
    main()
