"""How to set up and test a repository: `.qwenfix.yml` at its root, else detection."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.contract.job import CONFIG_FILE as CONFIG_FILE
from workers.engine.agent.loop import Limits
from workers.engine.context.classify import ContextRules
from workers.engine.maintenance_tasks import MaintenanceTask, check_unique
from workers.settings import WorkerSettings

OPENHANDS_SETUP = ".openhands/setup.sh"


class RepoConfigError(Exception):
    """`.qwenfix.yml` is present but unusable; the message says what to change."""


class RepoLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int | None = Field(default=None, ge=1)
    max_total_tokens: int | None = Field(default=None, ge=1)
    max_wall_s: float | None = Field(default=None, gt=0)
    test_timeout_s: float | None = Field(default=None, gt=0)
    setup_timeout_s: float | None = Field(default=None, gt=0)
    command_timeout_s: float | None = Field(default=None, gt=0)


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str | None = None
    setup: str | None = None
    setup_network: bool | None = None
    allow_workflow_changes: bool = False
    review_tests: bool = False
    """Whether a review runs the tests on the pull request's head and reports the result."""
    on_unresolved: Literal["comment", "draft_pr"] | None = None
    """When the tests cannot be made to pass: only a comment, or also a draft pull request
    with what was tried (default: QWENFIX_ON_UNRESOLVED, which defaults to comment)."""
    on_unverified: Literal["comment", "draft_pr"] | None = None
    """When a change passes only with its own edits to existing tests or test
    configuration: only a comment listing them, or also a draft pull request (default:
    QWENFIX_ON_UNVERIFIED, which defaults to comment)."""
    setup_cache: bool | None = None
    """false: run setup afresh for every job (default: QWENFIX_SETUP_CACHE, true)."""
    maintenance: list[MaintenanceTask] | None = None
    """Scheduled maintenance tasks; absent: the operator's defaults; [] opts out."""
    limits: RepoLimits = Field(default_factory=RepoLimits)
    context: ContextRules = Field(default_factory=ContextRules)
    source: str = Field(default="detected", exclude=True)

    @field_validator("maintenance")
    @classmethod
    def _unique(cls, value: list[MaintenanceTask] | None) -> list[MaintenanceTask] | None:
        return check_unique(value) if value is not None else None


ReadFile = Callable[[str], bytes | None]


def load_repo_config(paths: list[str], read: ReadFile) -> RepoConfig:
    """`.qwenfix.yml` when present (missing keys detected), else everything detected."""
    detected = detect(paths, read)
    raw = read(CONFIG_FILE) if CONFIG_FILE in paths else None
    if raw is None:
        return detected
    config, data = parse_repo_config(raw)
    if config.test is None:
        config.test = detected.test
    if config.setup is None and "setup" not in data:
        config.setup = detected.setup
    return config


def parse_repo_config(raw: bytes) -> tuple[RepoConfig, dict[str, object]]:
    """The file's own settings (nothing detected), and the mapping it holds."""
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RepoConfigError(f"{CONFIG_FILE} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RepoConfigError(f"{CONFIG_FILE} must be a mapping with keys such as test: and setup:")
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise RepoConfigError(f"{CONFIG_FILE} is invalid: {problems}") from exc
    config.source = CONFIG_FILE
    return config, data


def _text(read: ReadFile, path: str) -> str:
    raw = read(path)
    return raw.decode("utf-8", errors="replace") if raw else ""


def _any(paths: list[str], *patterns: str) -> bool:
    return any(fnmatch.fnmatch(p.rsplit("/", 1)[-1], pat) for p in paths for pat in patterns)


def detect(paths: list[str], read: ReadFile) -> RepoConfig:
    top = set(paths)
    setup = f"bash {OPENHANDS_SETUP}" if OPENHANDS_SETUP in top else None

    def found(test: str, default_setup: str | None, how: str) -> RepoConfig:
        return RepoConfig(test=test, setup=setup or default_setup, source=f"detected ({how})")

    pyproject = _text(read, "pyproject.toml") if "pyproject.toml" in top else ""
    pytest_markers = (
        {"pytest.ini", "conftest.py"} & top
        or "[tool.pytest" in pyproject
        or "[tool:pytest]" in (_text(read, "setup.cfg") if "setup.cfg" in top else "")
        or _any(paths, "test_*.py", "*_test.py")
    )
    if pytest_markers:
        return found("python -m pytest", _python_setup(top, pyproject), "pytest")
    if "tox.ini" in top:
        return found("tox", "pip install tox", "tox")
    if "package.json" in top:
        try:
            scripts = json.loads(_text(read, "package.json")).get("scripts") or {}
        except ValueError:
            scripts = {}
        test = scripts.get("test", "")
        if test and "no test specified" not in test:
            install = "npm ci" if "package-lock.json" in top else "npm install"
            return found("npm test", install, "npm")
    if "go.mod" in top:
        return found("go test ./...", "go mod download", "go")
    if "Cargo.toml" in top:
        return found("cargo test", "cargo fetch", "cargo")
    if "Makefile" in top and re.search(r"^test\s*:", _text(read, "Makefile"), re.M):
        return found("make test", None, "make")
    return RepoConfig(test=None, setup=setup, source="detected (nothing)")


def _python_setup(top: set[str], pyproject: str) -> str | None:
    for name in ("requirements-dev.txt", "requirements-test.txt", "requirements.txt"):
        if name in top:
            return f"pip install -r {name}"
    if "setup.py" in top or "[build-system]" in pyproject or "[project]" in pyproject:
        return "pip install -e ."
    return None


@dataclass(frozen=True)
class EffectiveLimits:
    """The repository's `limits:` where it sets them, the operator's settings elsewhere."""

    max_turns: int
    max_total_tokens: int
    max_wall_s: float
    test_timeout_s: float
    setup_timeout_s: float
    command_timeout_s: float

    @classmethod
    def of(cls, config: RepoConfig, settings: WorkerSettings) -> EffectiveLimits:
        own = config.limits
        return cls(
            max_turns=own.max_turns or settings.max_turns,
            max_total_tokens=own.max_total_tokens or settings.max_total_tokens,
            max_wall_s=own.max_wall_s or settings.max_wall_s,
            test_timeout_s=own.test_timeout_s or settings.test_timeout_s,
            setup_timeout_s=own.setup_timeout_s or settings.setup_timeout_s,
            command_timeout_s=own.command_timeout_s or settings.command_timeout_s,
        )

    def agent(self) -> Limits:
        return Limits(
            max_turns=self.max_turns,
            max_total_tokens=self.max_total_tokens,
            max_wall_s=self.max_wall_s,
        )
