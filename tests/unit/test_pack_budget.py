"""The pack's budget per window: what the reserve leaves, scaled for a smaller server, and
never more than the cap the recall benchmark supports."""

from __future__ import annotations

import pytest

from workers.settings import WorkerSettings


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> WorkerSettings:
    for name in ("LLM_CONTEXT_TOKENS", "CONTEXT_RESERVE_TOKENS", "CONTEXT_PACK_TOKENS"):
        monkeypatch.delenv(f"QWENFIX_{name}", raising=False)
    return WorkerSettings()


def test_native_window_packs_what_the_reserve_leaves(settings: WorkerSettings) -> None:
    assert settings.pack_budget() == 262_144 - 65_536
    assert settings.pack_budget(frame=1_000) == 262_144 - 65_536 - 1_000


def test_a_smaller_server_keeps_the_reserve_in_proportion(settings: WorkerSettings) -> None:
    assert settings.pack_budget(65_536) == 65_536 - 16_384
    # A server claiming more than the setting is held to the setting.
    assert settings.pack_budget(1_048_576) == 262_144 - 65_536


def test_a_yarn_window_does_not_grow_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENFIX_LLM_CONTEXT_TOKENS", "1048576")
    monkeypatch.delenv("QWENFIX_CONTEXT_PACK_TOKENS", raising=False)
    yarn = WorkerSettings()
    assert yarn.pack_budget() == 196_608
    monkeypatch.setenv("QWENFIX_CONTEXT_PACK_TOKENS", "500000")
    assert WorkerSettings().pack_budget() == 500_000
