"""Concrete parts built from settings, for the entry points (CLI, Celery tasks)."""

from __future__ import annotations

from sandbox import SandboxBackend
from workers.engine.llm.client import OpenAICompatibleModel, Sampling
from workers.settings import WorkerSettings


def make_backend(settings: WorkerSettings) -> SandboxBackend:
    if settings.sandbox_backend == "local":
        from sandbox.local_backend import LocalBackend

        return LocalBackend()
    from sandbox.docker_backend import DockerBackend

    return DockerBackend()


def make_model(settings: WorkerSettings) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        backoff_s=settings.llm_backoff_s,
        sampling=Sampling(max_tokens=settings.llm_max_tokens),
    )
