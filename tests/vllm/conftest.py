"""A real vLLM server (its CPU build) serving the tiny Qwen3-MoE model, for `make
test-vllm`. The venv comes from scripts/ensure-vllm.sh (cached outside the checkout); the
command line from `workers.cli.model_serving.cpu_command`, with production's flags. One
server runs at a time: two cores cannot serve two."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.vllm.tiny_model import build
from workers.cli.model_serving import cpu_command

ROOT = Path(__file__).parents[2]
STARTUP_S = 300
WINDOW = 8192


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM venv's python; the suite is skipped without it unless it is required
    (`make test-vllm` sets QWENFIX_REQUIRE_VLLM=1, so a broken install fails there)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-vllm.sh")], capture_output=True, text=True
    )
    python = Path(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    python = python / "bin" / "python"
    if done.returncode != 0 or not python.exists():
        why = f"vLLM's CPU build is not installed: {done.stderr.strip()[-2000:]}"
        if os.environ.get("QWENFIX_REQUIRE_VLLM"):
            pytest.fail(why)
        pytest.skip(why)
    return str(python)


@dataclass
class VllmServer:
    base_url: str
    """The OpenAI API root, ending in /v1."""
    root: str
    log: Path
    parser: bool
    window: int = WINDOW

    def metric(self, name: str) -> float:
        """A counter from the server's Prometheus `/metrics`, summed over its labels."""
        text = httpx.get(f"{self.root}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@dataclass
class Servers:
    python: str
    model_dir: Path
    logs: Path
    running: dict[bool, tuple[subprocess.Popen[bytes], VllmServer]] = field(default_factory=dict)

    def get(self, *, parser: bool) -> VllmServer:
        if parser in self.running:
            return self.running[parser][1]
        self.stop()
        port = _free_port()
        command = cpu_command(
            str(self.model_dir),
            python=self.python,
            port=port,
            max_context=WINDOW,
            parser=parser,
            chat_template=str(self.model_dir / "chat_template.jinja"),
        )
        log = self.logs / f"vllm-{'parser' if parser else 'no-parser'}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command.argv,
                env={**os.environ, **command.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        root = f"http://127.0.0.1:{port}"
        server = VllmServer(base_url=f"{root}/v1", root=root, log=log, parser=parser)
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited ({process.returncode}):\n{_tail(log)}")
            try:
                if httpx.get(f"{root}/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                _terminate(process)
                pytest.fail(f"vLLM did not start in {STARTUP_S}s:\n{_tail(log)}")
            time.sleep(1)
        self.running[parser] = (process, server)
        return server

    def stop(self) -> None:
        for process, _ in self.running.values():
            _terminate(process)
        self.running.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def vllm_servers(vllm_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    servers = Servers(
        python=vllm_python,
        model_dir=build(tmp_path_factory.mktemp("tiny-qwen3-moe")),
        logs=tmp_path_factory.mktemp("vllm-logs"),
    )
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def vllm_server(vllm_servers: Servers) -> VllmServer:
    """The server with qwenfix's flags: the qwen3_coder parser on."""
    return vllm_servers.get(parser=True)


@pytest.fixture
def vllm_server_no_parser(vllm_servers: Servers) -> VllmServer:
    """The same server without `--enable-auto-tool-choice --tool-call-parser`."""
    return vllm_servers.get(parser=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests wanting the parser-off server run last: each server then starts once
    (`Servers.get` stops one to start the other)."""
    items.sort(key=lambda item: "vllm_server_no_parser" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    """A failing test shows the end of the log of each vLLM server it used."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, VllmServer) and value.log.exists():
                report.sections.append((f"vLLM log {value.log}", _tail(value.log, 80)))
