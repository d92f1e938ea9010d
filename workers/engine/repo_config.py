"""How to set up and test a repository: its config file, else detection.

The config file is the first of CONFIG_FILES the tree has (`.qwenfix.yml` at the root wins
over `.github/qwenfix.yml`; the other is ignored, and `qwenfix config check` says so).
Owner-wide defaults (the same file in the owner's `.github` repository, fetched by the
worker and handed over as ConfigDefaults: the engine asks GitHub nothing) lie under the
repository's own file key by key at the top level: a key the repository sets replaces the
default's whole value (`limits:` or `context:` too), every other key is the default's.
Whatever neither sets is detected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.contract.job import CONFIG_FILE as CONFIG_FILE
from bot.contract.job import CONFIG_FILES as CONFIG_FILES
from workers.engine.agent.loop import Limits
from workers.engine.context.classify import ContextRules
from workers.engine.devcontainer import devcontainer
from workers.engine.ecosystems import (
    Ecosystem,
    Reporter,
    Toolchain,
    detect_toolchains,
    read_text,
)
from workers.engine.maintenance_tasks import MaintenanceTask, check_unique
from workers.settings import WorkerSettings

OPENHANDS_SETUP = ".openhands/setup.sh"


class RepoConfigError(Exception):
    """A config file is present but unusable; the message names it and says what to
    change. `source` is the file, `problems` each thing wrong with it (`key.path: why`)."""

    def __init__(self, source: str, problems: list[str], summary: str = "is invalid") -> None:
        super().__init__(f"{source} {summary}: {'; '.join(problems)}")
        self.source = source
        self.summary = summary
        self.problems = problems


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
    image: str | None = None
    """The sandbox image to run in, instead of the one chosen from the ecosystems found."""
    versions: dict[Ecosystem, str] = Field(default_factory=dict)
    """The version of a toolchain to look for an image of (`node: "22"`), instead of the
    one the repository's version files ask for."""
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
    toolchains: list[Toolchain] = Field(default_factory=list, exclude=True)
    """Every ecosystem the repository's files declare (ecosystems.detect_toolchains)."""
    devcontainer_image: str | None = Field(default=None, exclude=True)
    """The image `.devcontainer/devcontainer.json` names: used when this worker has it."""

    @property
    def reporters(self) -> list[Reporter]:
        return [t.reporter for t in self.toolchains if t.reporter is not None]

    @field_validator("maintenance")
    @classmethod
    def _unique(cls, value: list[MaintenanceTask] | None) -> list[MaintenanceTask] | None:
        return check_unique(value) if value is not None else None


ReadFile = Callable[[str], bytes | None]


class ConfigDefaults(BaseModel):
    """Owner-wide defaults, as the worker fetched them: where from (for messages) and the
    file's text."""

    source: str
    """Where the file is, as people would name it: `octo-org/.github:.qwenfix.yml`."""
    text: str


def config_path(paths: Iterable[str]) -> str | None:
    """The tree's config file: the first of CONFIG_FILES it has."""
    present = set(paths)
    return next((p for p in CONFIG_FILES if p in present), None)


def load_repo_config(
    paths: list[str], read: ReadFile, defaults: ConfigDefaults | None = None
) -> RepoConfig:
    """The config file when present, over the owner's defaults when given (missing keys
    detected), else everything detected."""
    detected = detect(paths, read)
    path = config_path(paths)
    raw = read(path) if path is not None else None
    if raw is None and defaults is None:
        return detected
    config, data = parse_repo_config(raw, path=path or CONFIG_FILE, defaults=defaults)
    if config.test is None:
        config.test = detected.test
    if config.setup is None and "setup" not in data:
        config.setup = detected.setup
    config.toolchains = detected.toolchains
    config.devcontainer_image = detected.devcontainer_image
    return config


def parse_repo_config(
    raw: bytes | None, *, path: str = CONFIG_FILE, defaults: ConfigDefaults | None = None
) -> tuple[RepoConfig, dict[str, object]]:
    """The settings of the file at `path` (None: there is none) over `defaults`, nothing
    detected, and the mapping they make."""
    own = _mapping(raw, path) if raw is not None else {}
    data = {**(_mapping(defaults.text.encode(), defaults.source) if defaults else {}), **own}
    sources = ([path] if raw is not None else []) + ([defaults.source] if defaults else [])
    source = " over ".join(sources) or path
    config = _validated(data, source)
    config.source = source
    return config, data


def _mapping(raw: bytes, source: str) -> dict[str, object]:
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RepoConfigError(source, [str(exc)], "is not valid YAML") from exc
    if not isinstance(data, dict):
        raise RepoConfigError(
            source, ["it must be a mapping with keys such as test: and setup:"], "is unusable"
        )
    if "source" in data:  # RepoConfig.source is where the config came from, not a setting
        raise RepoConfigError(source, ["source: Extra inputs are not permitted"])
    _validated(data, source)  # each file's own mistakes are reported as that file's
    return {str(k): v for k, v in data.items()}


def _validated(data: dict[str, object], source: str) -> RepoConfig:
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise RepoConfigError(source, problems) from exc


def detect(paths: list[str], read: ReadFile) -> RepoConfig:
    """Every ecosystem's setup, and the tests of each that has some (in ecosystems.ORDER),
    or a Makefile's `test:` target when none has. A dev container's image and
    postCreateCommand come before what is detected (`.openhands/setup.sh` before both)."""
    top = set(paths)
    toolchains = detect_toolchains(paths, read)
    container = devcontainer(paths, read)
    if OPENHANDS_SETUP in top:
        setup: str | None = f"bash {OPENHANDS_SETUP}"
    elif container and container.setup:
        setup = container.setup
    else:
        # Setup stops at the first step that fails.
        setup = " && ".join(dict.fromkeys(t.setup for t in toolchains if t.setup)) or None
    tested = [t for t in toolchains if t.test]
    test, source = (
        _every_test([t.test for t in tested if t.test]),
        ", ".join(t.tool for t in tested),
    )
    if (
        test is None
        and "Makefile" in top
        and re.search(r"^test\s*:", read_text(read, "Makefile"), re.M)
    ):
        test, source = "make test", "make"
    return RepoConfig(
        test=test,
        setup=setup,
        devcontainer_image=container.image if container else None,
        toolchains=toolchains,
        source=f"detected ({source or 'nothing'})",
    )


def _every_test(commands: list[str]) -> str | None:
    """One test command, or each of several in turn: all run, and the run fails if any
    did."""
    unique = list(dict.fromkeys(commands))
    if len(unique) <= 1:
        return unique[0] if unique else None
    return "status=0; " + "".join(f"{c} || status=$?; " for c in unique) + "exit $status"


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
