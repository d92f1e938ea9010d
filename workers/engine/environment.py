"""The sandbox a repository's jobs run in, chosen from the ecosystems it uses, and what that
sandbox turned out to hold (the toolchains' versions, next to those the repository asks
for)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from sandbox import ImageMissing, Sandbox, SandboxBackend
from workers.engine.ecosystems import Ecosystem, Toolchain
from workers.engine.repo_config import RepoConfig
from workers.settings import WorkerSettings

LABELS = {
    Ecosystem.PYTHON: "Python",
    Ecosystem.NODE: "Node.js",
    Ecosystem.GO: "Go",
    Ecosystem.RUST: "Rust",
    Ecosystem.JVM: "Java (JVM)",
}
PROBES = {
    # One line each: what the sandbox's toolchain says it is.
    Ecosystem.PYTHON: "python3 --version",
    Ecosystem.NODE: "node --version",
    Ecosystem.GO: "go version",
    Ecosystem.RUST: "rustc --version",
    Ecosystem.JVM: "java -version 2>&1 | head -1",
}
_BUILD_HINT = (
    "build it with `scripts/build-ecosystem-image.sh {list}` (offline, from Debian's "
    "toolchains) or from deploy/sandbox/Dockerfile.ECOSYSTEM, set "
    "QWENFIX_SANDBOX_ECOSYSTEM_IMAGE to where yours are, or name an image in .qwenfix.yml "
    "(`image:`)"
)


class EnvironmentMissing(Exception):
    """No image this worker has can run the repository's toolchains; the message names
    what is needed and how to get it."""

    def __init__(self, reason: str, *, needed: list[str], tried: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needed = needed
        self.tried = tried


@dataclass(frozen=True)
class Environment:
    image: str
    source: str
    """Why this image: `detected (node, go)`, `.qwenfix.yml image:`, a dev container."""
    toolchains: tuple[Toolchain, ...]
    notes: tuple[str, ...] = ()
    """What people should know: a version asked for that no image has, a dev container's
    image this worker lacks."""
    versions: dict[Ecosystem, str] = field(default_factory=dict)
    """What each toolchain in the sandbox says it is (filled in by `probe`)."""

    def settings(self, settings: WorkerSettings) -> WorkerSettings:
        """The worker's settings with this image as the sandbox's."""
        if self.image == settings.sandbox_image:
            return settings
        return settings.model_copy(update={"sandbox_image": self.image, "sandbox_snapshot": None})

    def describe(self) -> str:
        """For the model and the run's log: each ecosystem, its version, what was asked."""
        lines = []
        for t in self.toolchains:
            has = self.versions.get(t.ecosystem)
            line = f"- {LABELS[t.ecosystem]}" + (f": {has}" if has else "")
            if t.tool not in (t.ecosystem.value, "pip"):
                line += f" (with {t.tool})"
            if t.version:
                line += f"; the repository asks for {t.version} ({t.version_from})"
            lines.append(line)
        return "\n".join(lines)


def _major(version: str) -> str | None:
    """The part of a version an image tag carries: `22` of `v22.1.0` or `>=22`, `1.24` of
    Go's `1.24.3`, `1.85` of Rust's `1.85.0`; None for a range or channel (`stable`)."""
    m = re.search(r"(\d+(?:\.\d+)?)", version)
    if not m or re.search(r"[|x*]|\s-\s", version):
        return None
    number = m.group(1)
    return number.split(".", 1)[0] if "." in number and int(number.split(".")[0]) > 1 else number


def needed(toolchains: list[Toolchain]) -> list[Toolchain]:
    """The toolchains an image must add to the base's Python."""
    return [t for t in toolchains if t.ecosystem is not Ecosystem.PYTHON]


def candidates(config: RepoConfig, settings: WorkerSettings) -> list[str]:
    """Image names for the repository's ecosystems, the versioned one first."""
    extra = sorted(needed(config.toolchains), key=lambda t: t.ecosystem.value)
    if not extra:
        return [settings.sandbox_image]
    plain = "-".join(t.ecosystem.value for t in extra)
    parts = []
    for t in extra:
        asked = config.versions.get(t.ecosystem) or t.version
        major = _major(asked) if asked else None
        parts.append(f"{t.ecosystem.value}{major}" if major else t.ecosystem.value)
    versioned = "-".join(parts)
    names = [versioned, plain] if versioned != plain else [plain]
    return [settings.sandbox_ecosystem_image.format(ecosystems=n) for n in names]


def _present(backend: SandboxBackend, image: str) -> bool:
    try:
        backend.image_id(image)
    except ImageMissing:
        return False
    return True


def choose(config: RepoConfig, settings: WorkerSettings, backend: SandboxBackend) -> Environment:
    """The image the repository names (`.qwenfix.yml`, then its dev container), else the
    one for the ecosystems it uses. A named image that is missing is an error, as is one
    for the ecosystems; a dev container's is skipped with a note (it is an editor's file,
    often of a registry this worker cannot reach)."""
    toolchains = tuple(config.toolchains)
    notes: list[str] = []
    if config.image is not None:
        if _present(backend, config.image):
            return Environment(config.image, f"{config.source} image:", toolchains)
        raise EnvironmentMissing(
            f"the sandbox image {config.image} that {config.source} names is not on this "
            "worker: pull or build it there, or remove `image:`",
            needed=[config.image],
            tried=[config.image],
        )
    if config.devcontainer_image is not None:
        if _present(backend, config.devcontainer_image):
            return Environment(config.devcontainer_image, "the dev container's image", toolchains)
        notes.append(
            f"the dev container's image {config.devcontainer_image} is not on this worker; "
            "the image for the repository's ecosystems is used instead"
        )
    tried = candidates(config, settings)
    for image in tried:
        if image == settings.sandbox_image or _present(backend, image):
            if image != tried[0]:
                notes.extend(_unmatched(config))
            extra = needed(list(toolchains))
            source = (
                f"detected ({', '.join(t.ecosystem.value for t in extra)})"
                if extra
                else "the default image"
            )
            return Environment(image, source, toolchains, tuple(notes))
    names = sorted({t.ecosystem.value for t in needed(list(toolchains))})
    needs = ", ".join(
        f"{LABELS[t.ecosystem]} (from {t.evidence})" for t in needed(list(toolchains))
    )
    raise EnvironmentMissing(
        f"this repository needs {needs}, and no sandbox image for it is on this worker "
        f"(tried {', '.join(tried)}): " + _BUILD_HINT.format(list=",".join(names)),
        needed=names,
        tried=tried,
    )


def _unmatched(config: RepoConfig) -> list[str]:
    return [
        f"{LABELS[t.ecosystem]}: the repository asks for "
        f"{config.versions.get(t.ecosystem) or t.version}, and no image has that version"
        for t in needed(config.toolchains)
        if config.versions.get(t.ecosystem) or t.version
    ]


def probe(sb: Sandbox, environment: Environment) -> Environment:
    """The environment with each toolchain's version as the sandbox reports it (a
    toolchain that is not there says `not installed`)."""
    ecosystems = list(dict.fromkeys(t.ecosystem for t in environment.toolchains))
    if not ecosystems:
        return environment
    # One round trip: a line `ecosystem<TAB>version` each, empty when it is not there.
    script = "\n".join(
        f"printf '%s\\t' {e.value}; ({PROBES[e]}) 2>/dev/null | head -1; echo" for e in ecosystems
    )
    result = sb.run(script, timeout=60)
    found: dict[Ecosystem, str] = {}
    for line in result.output.splitlines():
        name, _, version = line.partition("\t")
        if name in {e.value for e in ecosystems}:
            found[Ecosystem(name)] = version.strip() or "not installed"
    return replace(environment, versions=found)
