"""Worker settings, read from the environment (prefix QWENFIX_) in this one place."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.engine.maintenance_tasks import MaintenanceTask

QWEN3_CODER_CONTEXT = 262_144


def _system_ca_bundle() -> str | None:
    cafile = ssl.get_default_verify_paths().cafile
    return cafile if cafile and Path(cafile).is_file() else None


def _state_dir() -> Path:
    return Path.home() / ".local" / "state" / "qwenfix"


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QWENFIX_", extra="ignore")

    # Model server (vLLM serving Qwen3-Coder, or any OpenAI-compatible server).
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_model: str = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    tokenizer_path: Path | None = None
    """The served model's `tokenizer.json`, or its model directory, for exact token
    counts; unset: the copy of Qwen3's that ships with qwenfix (Qwen3-Coder's vocabulary)."""
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = 600.0
    llm_max_retries: int = Field(default=4, ge=0)
    llm_backoff_s: float = Field(default=2.0, ge=0)
    llm_max_tokens: int = 8192
    llm_context_tokens: int = QWEN3_CODER_CONTEXT
    context_reserve_tokens: int = 65_536
    """Room kept free for the rest of the conversation after the packed repository (the
    same share of a smaller window when the server's is smaller)."""
    context_pack_tokens: int = Field(default=196_608, ge=1024)
    """The most the packed repository takes, whatever the window: on the recall benchmark
    (docs/performance.md) a pack larger than this holds the fix files no more often, and
    costs prefill and room. A 1M-token (YaRN) window leaves the rest to the conversation."""
    llm_min_output_tokens: int = Field(default=1024, ge=16)
    """A reply needs at least this much room; below it the conversation starts again."""
    context_restarts: int = Field(default=2, ge=0)
    """Times a run whose conversation fills the window starts it again (the task and the
    packed repository, then an account of the run so far) before it ends `context_full`."""

    # Sandbox.
    sandbox_backend: Literal["docker", "local"] = "docker"
    """docker (isolated containers) or local (bubblewrap on this host, weaker isolation)."""
    sandbox_image: str = "qwenfix-sandbox:1"
    sandbox_snapshot: str | None = None
    """Start sandboxes from this snapshot of `sandbox_image` rather than the image itself:
    `qwenfix eval` sets it per task (its shared dependencies); not for deployments."""
    sandbox_ecosystem_image: str = "qwenfix-sandbox:{ecosystems}"
    """The sandbox image for a repository that needs toolchains besides Python
    ({ecosystems}: those it uses, sorted, joined by "-": `go-node`); tried first with the
    major versions it asks for (`node22`). scripts/build-ecosystem-image.sh builds one
    offline, deploy/sandbox/Dockerfile.ECOSYSTEM from the official images."""
    eval_image: str = "qwenfix-sandbox:py{python}"
    """The sandbox image for an evaluation task that names its Python ({python}: "3.9");
    scripts/build-sandbox-image.sh --python 3.9 builds one offline, deploy/sandbox's
    Dockerfile with --build-arg PYTHON=3.9 from the official image."""
    sandbox_memory_mb: int = 4096
    sandbox_cpus: float = 2.0
    sandbox_pids_limit: int = 512
    sandbox_max_file_mb: int = 4096
    """The largest file a sandboxed command may write."""
    sandbox_max_disk_mb: int = 10240
    """All a sandbox may write to disk (Docker backend); a command past it is stopped."""
    sandbox_ca_bundle: str | None = Field(default_factory=_system_ca_bundle)
    """CA bundle mounted for the setup phase; empty disables. Needed behind TLS proxies."""
    setup_network: bool = True
    setup_cache: bool = True
    """Snapshot a repository's sandbox after setup and start its later jobs from it when
    the image, the setup command and the files setup reads are the same."""
    setup_cache_max_mb: int = Field(default=20_480, ge=0)
    """Setup snapshots kept at most (oldest removed first); 0 keeps none across jobs."""
    setup_cache_max_age_h: float = Field(default=168.0, gt=0)
    """Setup snapshots older than this are removed (dependencies move on)."""
    setup_timeout_s: float = 900.0
    test_timeout_s: float = 600.0
    command_timeout_s: float = 120.0

    # Agent limits.
    max_turns: int = 50
    max_total_tokens: int = 10_000_000
    max_wall_s: float = 1800.0
    tool_output_chars: int = 16_000

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "qwenfix")
    """Token counts and outlines by git blob id, so that packing again is cheap."""
    trajectory_dir: Path = Field(default_factory=lambda: _state_dir() / "trajectories")

    # Job pipeline: the broker, the job records, and the GitHub App (worker-only secrets).
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///qwenfix.db"
    github_api_url: str = "https://api.github.com"
    github_app_id: int | None = None
    github_private_key: SecretStr | None = None
    github_private_key_file: Path | None = None
    bot_login: str = "qwenfix[bot]"
    trigger: str = "qwenfix"
    public_url: str | None = None
    """Where people reach `qwenfix serve` (e.g. https://qwenfix.example.com): status
    comments then link to the job's page on the dashboard."""
    on_refusal: Literal["comment", "silent"] = "comment"
    """What a person without write access hears: a polite comment, or nothing."""
    agent_queue: str = "agent"
    quick_queue: str = "quick"
    visibility_timeout_s: int | None = None
    """How long the broker waits before handing an unacknowledged job to another worker;
    default: longer than the longest job."""
    restore_sweep_s: int | None = None
    """Seconds between the broker's sweeps for jobs whose worker died (kombu's default,
    about 100 s, when unset)."""
    pr_draft: bool = False
    max_ci_attempts: int = 2
    """Fix-CI attempts per pull request before qwenfix stops and says so."""
    on_unresolved: Literal["comment", "draft_pr"] = "comment"
    on_unverified: Literal["comment", "draft_pr"] = "comment"
    """When a change passes only with its own edits to tests or test configuration."""
    max_diff_lines: int = 2000

    log_format: Literal["text", "json"] = "text"
    """json: one JSON object per line, with the delivery and job ids."""
    metrics_port: int | None = None
    """A worker serves Prometheus metrics on this port (none when unset)."""

    # Scheduled maintenance (Celery beat: `qwenfix beat`).
    maintenance_defaults: list[MaintenanceTask] = Field(default_factory=list)
    """Tasks for repositories whose .qwenfix.yml has no `maintenance:` key, as JSON, e.g.
    [{"task": "fix-failing-tests", "schedule": "0 4 * * *"}]. Empty: opt-in per repo."""
    maintenance_tick_s: float = Field(default=60.0, gt=0)
    """How often beat asks a worker which scheduled tasks are due."""
    requeue_after_s: int = Field(default=600, ge=60)
    """A job still `queued` this long after it was recorded (or last sent) is sent to the
    quick queue again on beat's tick: its message was lost (Redis restarted without
    persistence, a tick died half-way). Sending twice is safe: acknowledging is
    compare-and-set."""
    maintenance_catchup_s: int = Field(default=3600, ge=60)
    """A run missed while no beat was up is made up for if it is at most this old."""
    maintenance_refresh_s: int = Field(default=3600, ge=60)
    """Each repository's config is read again at least this often (and after a push
    that changes it)."""
    maintenance_max_prs_per_day: int = Field(default=5, ge=0)
    """Scheduled pull requests (opened or updated) per repository per day."""
    beat_lease_s: int = Field(default=30, ge=3)
    """A second beat takes over this long after the first stops renewing its lease."""

    # Redelivery sweep: GitHub does not redeliver the deliveries answered 503 by itself.
    redeliver_every_s: float = Field(default=300.0, ge=0)
    """How often beat asks a worker to redeliver failed webhook deliveries; 0: never."""
    redeliver_window_s: int = Field(default=71 * 3600, ge=60, le=3 * 24 * 3600)
    """Only deliveries this recent are asked for again (GitHub keeps them for 3 days)."""
    redeliver_interval_s: int = Field(default=900, ge=1)
    """A failed delivery is asked for again at most once in this long."""
    redeliver_max_pages: int = Field(default=50, ge=1)
    """Pages of 100 delivery attempts one sweep lists at most (newest first)."""
    redeliver_max_requests: int = Field(default=500, ge=1)
    """Redeliveries one sweep asks for at most; the rest wait for the next sweep."""

    def pack_budget(self, window: int | None = None, frame: int = 0) -> int:
        """Tokens for the packed repository in a window of `window` tokens (the setting's
        when None or larger) around a prompt of `frame` tokens: what the reserve leaves,
        never more than `context_pack_tokens`."""
        told = self.llm_context_tokens
        window = min(window or told, told)
        # The reserve is set for the setting's window; a smaller server keeps its proportion.
        reserve = self.context_reserve_tokens * window // told
        return min(window - reserve - frame, self.context_pack_tokens)

    @property
    def longest_job_s(self) -> float:
        """The longest a job can take: its agent run, its setup and two test runs (the
        baseline and the verdict). Locks, broker timeouts and sandbox pruning outlast it."""
        return self.max_wall_s + self.setup_timeout_s + 2 * self.test_timeout_s
