"""A real vLLM server (its CPU build) serving the tiny Qwen3-MoE model, for `make
test-vllm`; tests/vllm/server.py starts and stops it. One server runs at a time: two cores
cannot serve two."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.vllm.server import RunningServer, ServerDidNotStart, VllmServer, start, tail, venv_python
from tests.vllm.tiny_model import build

WINDOW = 8192


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM venv's python (installed when missing); the suite is skipped without it
    unless it is required (`make test-vllm` sets QWENFIX_REQUIRE_VLLM=1, so a broken
    install fails there)."""
    python, why = venv_python(install=True)
    if python is None:
        why = f"vLLM's CPU build is not installed: {why}"
        if os.environ.get("QWENFIX_REQUIRE_VLLM"):
            pytest.fail(why)
        pytest.skip(why)
    return str(python)


@dataclass
class Servers:
    python: str
    model_dir: Path
    logs: Path
    running: dict[bool, RunningServer] = field(default_factory=dict)

    def get(self, *, parser: bool) -> VllmServer:
        if parser in self.running:
            return self.running[parser].server
        self.stop()
        try:
            running = start(self.python, self.model_dir, self.logs, window=WINDOW, parser=parser)
        except ServerDidNotStart as error:
            pytest.fail(str(error))
        self.running[parser] = running
        return running.server

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
        self.running.clear()


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
                report.sections.append((f"vLLM log {value.log}", tail(value.log, 80)))
