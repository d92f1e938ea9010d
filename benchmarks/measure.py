"""Whole-process measurements: wall time and the peak memory of the process tree."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Runs the command as a child of a fresh interpreter, so that RUSAGE_CHILDREN holds the
# peak resident memory of that command's processes and nothing else.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_mb": peak / 1024, "code": proc.returncode,
                  "stderr": proc.stderr.decode(errors="replace")[-2000:]}))
"""


@dataclass
class Sample:
    wall_s: float
    peak_mb: float


@dataclass
class Summary:
    name: str
    runs: int
    wall_s: float
    wall_min_s: float
    wall_max_s: float
    peak_mb: float
    note: str = ""

    def row(self) -> str:
        return (
            f"{self.name:<34} {self.wall_s:8.2f} s  (min {self.wall_min_s:.2f}, "
            f"max {self.wall_max_s:.2f})  {self.peak_mb:7.0f} MB  {self.note}"
        )


def run_once(argv: Sequence[str], env: dict[str, str] | None = None) -> Sample:
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    data = json.loads(out.stdout)
    if data["code"] != 0:
        raise RuntimeError(f"{argv[0]} exited {data['code']}: {data['stderr']}")
    return Sample(wall_s=data["wall_s"], peak_mb=data["peak_mb"])


def measure(
    name: str,
    runs: int,
    make: Callable[[int], tuple[list[str], dict[str, str]]],
    warmup: bool = True,
) -> Summary:
    """`make(i)` gives the command and extra environment of run i (-1 for the warm-up)."""
    if warmup:
        run_once(*make(-1))
    samples = [run_once(*make(i)) for i in range(runs)]
    walls = [s.wall_s for s in samples]
    return Summary(
        name=name,
        runs=runs,
        wall_s=statistics.median(walls),
        wall_min_s=min(walls),
        wall_max_s=max(walls),
        peak_mb=statistics.median(s.peak_mb for s in samples),
    )
