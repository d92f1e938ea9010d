"""`qwenfix doctor`'s model check against the real vLLM server, served both ways. The
probe is a forced named call, so it passes with random weights when the qwen3_coder parser
is on, and names the missing flags when it is off (vLLM refuses the forced choice)."""

from __future__ import annotations

from tests.vllm.conftest import WINDOW, VllmServer
from workers.cli.doctor import check_model, run_checks
from workers.settings import WorkerSettings


def aimed_at(server: VllmServer, settings: WorkerSettings) -> WorkerSettings:
    return settings.model_copy(
        update={
            "llm_base_url": server.base_url,
            "llm_model": "tiny",
            "llm_context_tokens": WINDOW,
        }
    )


def test_the_model_check_passes_against_vllm_with_the_parser_on(
    vllm_server: VllmServer, settings: WorkerSettings
) -> None:
    detail = check_model(aimed_at(vllm_server, settings))
    assert detail.startswith(f"tiny, window {WINDOW}, tool calls parsed by the server")
    assert "not how well the model chooses" in detail


def test_the_model_check_names_the_flags_against_vllm_without_the_parser(
    vllm_server_no_parser: VllmServer, settings: WorkerSettings
) -> None:
    (check,) = [
        c for c in run_checks(aimed_at(vllm_server_no_parser, settings)) if c.name == "model"
    ]
    assert not check.ok
    assert "qwen3_coder parser is off" in check.detail and "HTTP 400" in check.detail
    assert "--enable-auto-tool-choice --tool-call-parser qwen3_coder" in check.fix
