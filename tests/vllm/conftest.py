"""A real vLLM server (its CPU build) serving the tiny Qwen3-MoE model, for `make
test-vllm`. The venv comes from scripts/ensure-vllm.sh (cached outside the checkout); the
command line from `workers.cli.model_serving.cpu_command`, with production's flags.

Two servers: `vllm_server` (qwenfix's flags) and `vllm_server_no_parser` (without the
tool parser's), each started on a free port when a test first asks for it. The tests that
want the second run last, and the first is stopped before it starts unless the machine has
the memory for both (each takes about 3.5 GB): so at most one server starts while another
is busy, and the parser-on one starts once.

Random weights almost never call a tool of their own accord: `ForcingModel`, the
project's client with `tool_choice` naming a tool, makes every answer a call."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.vllm.tiny_model import build
from workers.cli.model_serving import cpu_command
from workers.engine.llm.client import OpenAICompatibleModel
from workers.engine.llm.types import Message, ToolSchema

ROOT = Path(__file__).parents[2]
STARTUP_S = 300
WINDOW = 8192
BOTH_SERVERS_MB = 8 * 1024
"""Memory available (MemAvailable) at or above which a second server starts beside the
first instead of replacing it."""


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM venv's python; the suite is skipped without it unless it is required
    (`make test-vllm` sets QWENFIX_REQUIRE_VLLM=1, so a broken install fails there)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-vllm.sh")], capture_output=True, text=True
    )
    out = done.stdout.strip()
    python = Path(out.splitlines()[-1] if out else "") / "bin" / "python"
    if done.returncode != 0 or not out or not python.exists():
        why = (
            f"vLLM's CPU build is not installed (scripts/ensure-vllm.sh exit "
            f"{done.returncode}): {done.stderr.strip()[-2000:] or out or 'no output'}"
        )
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

    def metrics(self) -> str:
        return httpx.get(f"{self.root}/metrics", timeout=10).text

    def metric(self, name: str) -> float:
        """A counter from the server's Prometheus `/metrics`, summed over its labels."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def block_size(self) -> int:
        """The KV cache's block size (the prefix cache's unit), from `vllm:cache_config_info`."""
        for line in self.metrics().splitlines():
            if line.startswith("vllm:cache_config_info{"):
                for label in line[line.index("{") + 1 : line.rindex("}")].split(","):
                    key, _, value = label.partition("=")
                    if key == "block_size":
                        return int(value.strip('"'))
        raise AssertionError("the server's /metrics has no vllm:cache_config_info block_size")


@dataclass
class Servers:
    python: str
    model_dir: Path
    logs: Path
    running: dict[bool, tuple[subprocess.Popen[bytes], VllmServer]] = field(default_factory=dict)

    def get(self, *, parser: bool) -> VllmServer:
        if parser in self.running:
            return self.running[parser][1]
        if self.running and _available_mb() < BOTH_SERVERS_MB:
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
                start_new_session=True,  # its own process group: stopped with its children
            )
        atexit.register(_terminate, process)  # even if the session's teardown never runs
        root = f"http://127.0.0.1:{port}"
        server = VllmServer(base_url=f"{root}/v1", root=root, log=log, parser=parser)
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited ({process.returncode}); {log}:\n{_tail(log)}")
            try:
                if httpx.get(f"{root}/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                _terminate(process)
                pytest.fail(f"vLLM did not start in {STARTUP_S}s; {log}:\n{_tail(log)}")
            time.sleep(1)
        self.running[parser] = (process, server)
        return server

    def stop(self) -> None:
        for process, _ in self.running.values():
            _terminate(process)
        self.running.clear()


def _available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


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
    """Every test here is marked `vllm`; the ones wanting the parser-off server go last, so
    that the parser-on server starts once."""
    for item in items:
        if Path(str(item.path)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.vllm)
    items.sort(key=lambda item: "vllm_server_no_parser" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    """A failing test shows the end of the log of each vLLM server it used."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, VllmServer) and value.log.exists():
            report.sections.append((f"vLLM log {value.log}", _tail(value.log, 80)))


# -- making random weights call tools ---------------------------------------------------

CLOSE = "522"
"""Qwen3's token for `</`. vLLM 0.32 makes a named call through a structural tag in
Qwen3-Coder's own format (`<tool_call>\n<function=NAME>\n` …), which lets random weights
write up to `max_tokens` of filler before `</function>`; a bias towards `</` (allowed only
where the tag allows it) closes the call at once, with no parameters."""
ROTATION = ("run_tests", "view", "search", "bash")
"""The tools named in turn: consecutive calls differ, so the loop never stops as stuck."""


class ForcingModel(OpenAICompatibleModel):
    """The project's client, naming the tool of every request (`tool_choice`): the next of
    `rotation` by the number of assistant turns so far, so a replayed conversation asks
    for the same. Keeps a copy of every request body and every raw response."""

    def __init__(self, *, rotation: Sequence[str] = ROTATION, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rotation = tuple(rotation)
        self.bodies: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []

    def forced(self, messages: Sequence[Message]) -> str:
        return self.rotation[sum(m["role"] == "assistant" for m in messages) % len(self.rotation)]

    def request_body(self, messages: list[Message], tools: list[ToolSchema]) -> dict[str, Any]:
        body = super().request_body(messages, tools)
        body["tool_choice"] = {"type": "function", "function": {"name": self.forced(messages)}}
        body["logit_bias"] = {CLOSE: 100}
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(json.loads(json.dumps(body)))  # the loop's list grows after
        data = super()._post(body)
        self.responses.append(data)
        return data


def forcing_model(server: VllmServer, **kwargs: Any) -> ForcingModel:
    return ForcingModel(
        base_url=server.base_url,
        model="tiny",
        max_retries=0,  # a refusal or an error shows at once, not after retries
        backoff_s=0.01,
        timeout_s=120,
        **kwargs,
    )
