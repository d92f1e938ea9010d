"""`qwenfix fix PATH`: the fix engine on a local repository, with the model and sandbox
backend the settings name, built here at the entry point."""

from __future__ import annotations

from workers.engine.factory import make_backend, make_model
from workers.engine.fix import FixRequest, FixResult, run_fix
from workers.settings import WorkerSettings


def execute_fix(request: FixRequest, settings: WorkerSettings) -> FixResult:
    with make_model(settings) as model:
        return run_fix(
            request,
            model=model,
            backend=make_backend(settings),
            settings=settings,
            model_name=settings.llm_model,
        )
