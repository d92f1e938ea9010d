"""Starting and stopping vLLM's CPU build on the tiny Qwen3-MoE model, without pytest:
`make test-vllm`'s fixtures and `make bench`'s server row both use it. The venv comes
from scripts/ensure-vllm.sh; the command line from `workers.cli.model_serving.cpu_command`,
with production's flags."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from workers.cli.model_serving import cpu_command

ROOT = Path(__file__).parents[2]
STARTUP_S = 300


class ServerDidNotStart(Exception):
    def __init__(self, reason: str, log_tail: str) -> None:
        super().__init__(f"{reason}:\n{log_tail}")
        self.reason = reason
        self.log_tail = log_tail


def venv_python(*, install: bool) -> tuple[Path | None, str]:
    """The vLLM venv's python and, when there is none, why. With `install` false nothing
    is installed (a benchmark must not download 3.4 GB unasked)."""
    argv = ["bash", str(ROOT / "scripts" / "ensure-vllm.sh")]
    if not install:
        argv.append("--check")
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    python = Path(lines[-1]) / "bin" / "python" if lines else None
    if done.returncode != 0 or python is None or not python.exists():
        return None, done.stderr.strip()[-2000:] or "scripts/ensure-vllm.sh printed no venv"
    return python, ""


@dataclass
class VllmServer:
    base_url: str
    """The OpenAI API root, ending in /v1."""
    root: str
    log: Path
    parser: bool
    window: int

    def metric(self, name: str) -> float:
        """A counter from the server's Prometheus `/metrics`, summed over its labels."""
        text = httpx.get(f"{self.root}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    server: VllmServer

    def stop(self) -> None:
        terminate(self.process)


def start(
    python: str, model_dir: Path, logs: Path, *, window: int, parser: bool = True
) -> RunningServer:
    """A server on a free port, answering `/v1/models`; `ServerDidNotStart` with the end
    of its log when it exits or is not up within STARTUP_S."""
    port = free_port()
    command = cpu_command(
        str(model_dir),
        python=python,
        port=port,
        max_context=window,
        parser=parser,
        chat_template=str(model_dir / "chat_template.jinja"),
    )
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"vllm-{'parser' if parser else 'no-parser'}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command.argv,
            env={**os.environ, **command.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    root = f"http://127.0.0.1:{port}"
    server = VllmServer(base_url=f"{root}/v1", root=root, log=log, parser=parser, window=window)
    deadline = time.monotonic() + STARTUP_S
    while True:
        if process.poll() is not None:
            raise ServerDidNotStart(f"vLLM exited ({process.returncode})", tail(log))
        try:
            if httpx.get(f"{root}/v1/models", timeout=5).status_code == 200:
                return RunningServer(process, server)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            terminate(process)
            raise ServerDidNotStart(f"vLLM did not start in {STARTUP_S}s", tail(log))
        time.sleep(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
