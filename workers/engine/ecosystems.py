"""Which toolchains a repository needs, from its files: the ecosystem, the version it asks
for and where it says so, the package manager, the setup that fetches its dependencies,
the test command, and how that runner's per-test results are read.

Pure: it reads files through a callback and decides; choosing an image for the versions
found (and saying when none matches) is the caller's, which knows what images exist.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pathspec import GitIgnoreSpec

ReadFile = Callable[[str], bytes | None]


class Ecosystem(StrEnum):
    PYTHON = "python"
    NODE = "node"
    GO = "go"
    RUST = "rust"
    JVM = "jvm"


class Reporter(StrEnum):
    """How a runner's per-test results are read (verify.py); none: the exit status only."""

    PYTEST = "pytest"  # JUnit XML through PYTEST_ADDOPTS
    GO_JSON = "go-json"  # go test -json
    NODE_TEST = "node-test"  # node --test, its JUnit reporter
    JEST = "jest"  # --json --outputFile
    VITEST = "vitest"  # --reporter=json --outputFile
    CARGO = "cargo"  # libtest's per-test lines
    SUREFIRE = "surefire"  # Maven's target/surefire-reports/*.xml
    GRADLE = "gradle"  # build/test-results/**/*.xml


@dataclass(frozen=True)
class Toolchain:
    """One ecosystem a repository uses, as its files describe it."""

    ecosystem: Ecosystem
    evidence: str
    """The files that say so: `package.json, package-lock.json`."""
    setup: str | None
    test: str | None
    """None: the ecosystem is there (a front end's package.json) but has no tests to run."""
    tool: str
    """What runs its tests or installs it: pytest, tox, pip; npm, yarn, pnpm; go; cargo;
    maven, gradle."""
    version: str | None = None
    """The version the repository asks for (`20`, `1.22`, `21`), as it writes it."""
    version_from: str | None = None
    reporter: Reporter | None = None


def read_text(read: ReadFile, path: str) -> str:
    """The file as text (empty when absent), undecodable bytes replaced."""
    raw = read(path)
    return raw.decode("utf-8", errors="replace") if raw else ""


def _json(read: ReadFile, path: str) -> dict[str, object]:
    try:
        data = json.loads(read_text(read, path) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _toml(read: ReadFile, path: str) -> dict[str, object]:
    try:
        return tomllib.loads(read_text(read, path))
    except tomllib.TOMLDecodeError:
        return {}


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def tool_versions(read: ReadFile, top: set[str]) -> dict[str, str]:
    """asdf/mise's `.tool-versions`: tool -> its first version."""
    if ".tool-versions" not in top:
        return {}
    found: dict[str, str] = {}
    for line in read_text(read, ".tool-versions").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2:
            found.setdefault(parts[0], parts[1])
    return found


def _first_line(read: ReadFile, path: str) -> str | None:
    for line in read_text(read, path).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _version_file(
    read: ReadFile, top: set[str], files: tuple[str, ...], asdf: dict[str, str], *tools: str
) -> tuple[str | None, str | None]:
    for name in files:
        if name in top and (value := _first_line(read, name)):
            return value, name
    for tool in tools:
        if tool in asdf:
            return asdf[tool], ".tool-versions"
    return None, None


def warm(command: str) -> str:
    """A build during setup whose output lands in the snapshot (compiled dependencies, the
    build cache), so that test runs start warm; a repository that does not build yet still
    sets up, and its tests say why."""
    return f"{{ {command} >/dev/null 2>&1 || true; }}"


# -- Python -------------------------------------------------------------------------


def _any(paths: list[str], *patterns: str) -> bool:
    spec = GitIgnoreSpec.from_lines(patterns)
    return any(spec.match_file(p) for p in paths)


def _python(
    paths: list[str], top: set[str], read: ReadFile, asdf: dict[str, str]
) -> Toolchain | None:
    pyproject = read_text(read, "pyproject.toml") if "pyproject.toml" in top else ""
    setup_cfg = read_text(read, "setup.cfg") if "setup.cfg" in top else ""
    version, version_from = _version_file(read, top, (".python-version",), asdf, "python")
    pytest = (
        {"pytest.ini", "conftest.py"} & top
        or "[tool.pytest" in pyproject
        or "[tool:pytest]" in setup_cfg
        or _any(paths, "test_*.py", "*_test.py")
    )
    setup = _python_setup(top, pyproject)
    markers = {"pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"} & top
    reporter: Reporter | None = None
    if pytest:
        evidence = ", ".join(sorted({"pytest.ini", "conftest.py"} & top)) or "test files"
        test: str | None = "python -m pytest"
        tool, reporter = "pytest", Reporter.PYTEST
    elif "tox.ini" in top:
        evidence, setup, test, tool = "tox.ini", "pip install tox", "tox", "tox"
    elif markers:
        evidence, test, tool = ", ".join(sorted(markers)), None, "pip"
    else:
        return None
    return Toolchain(
        Ecosystem.PYTHON,
        evidence,
        setup,
        test,
        tool,
        version=version,
        version_from=version_from,
        reporter=reporter,
    )


def _python_setup(top: set[str], pyproject: str) -> str | None:
    for name in ("requirements-dev.txt", "requirements-test.txt", "requirements.txt"):
        if name in top:
            return f"pip install -r {name}"
    if "setup.py" in top or "[build-system]" in pyproject or "[project]" in pyproject:
        return "pip install -e ."
    return None


# -- Node.js ------------------------------------------------------------------------

_NPM_DEFAULT_TEST = "no test specified"


def _node(top: set[str], read: ReadFile, asdf: dict[str, str]) -> Toolchain | None:
    if "package.json" not in top:
        return None
    manifest = _json(read, "package.json")
    scripts = manifest.get("scripts")
    script = scripts.get("test") if isinstance(scripts, dict) else None
    test_script = script if isinstance(script, str) and _NPM_DEFAULT_TEST not in script else ""
    declared = manifest.get("packageManager")
    manager, lock = _node_manager(top, declared if isinstance(declared, str) else "")
    version, version_from = _version_file(
        read, top, (".nvmrc", ".node-version"), asdf, "nodejs", "node"
    )
    engines = _dig(manifest, "engines", "node")
    if version is None and isinstance(engines, str):
        version, version_from = engines, "package.json engines.node"
    evidence = ", ".join(["package.json"] + ([lock] if lock else []))
    return Toolchain(
        Ecosystem.NODE,
        evidence,
        _node_install(manager, lock),
        f"{manager} test" if test_script else None,
        manager,
        version=version,
        version_from=version_from,
        reporter=_node_reporter(test_script),
    )


def _node_manager(top: set[str], declared: str) -> tuple[str, str | None]:
    locks = (
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("package-lock.json", "npm"),
        ("npm-shrinkwrap.json", "npm"),
    )
    lock = next(((name, tool) for name, tool in locks if name in top), None)
    # `packageManager: pnpm@9.1.0` is corepack's own statement and wins over a stray lock.
    named = declared.split("@", 1)[0]
    if named in ("npm", "yarn", "pnpm"):
        return named, lock[0] if lock and lock[1] == named else None
    return (lock[1], lock[0]) if lock else ("npm", None)


def _node_install(manager: str, lock: str | None) -> str:
    if manager == "npm":
        return "npm ci" if lock else "npm install"
    # yarn and pnpm come through corepack, at the version package.json names.
    frozen = {"yarn": "--immutable", "pnpm": "--frozen-lockfile"}[manager] if lock else ""
    return f"corepack {manager} install {frozen}".strip()


def _node_reporter(script: str) -> Reporter | None:
    if re.search(r"\bvitest\b", script):
        return Reporter.VITEST
    if re.search(r"\bjest\b", script):
        return Reporter.JEST
    if re.search(r"\bnode\b[^&|;]*--test\b", script):
        return Reporter.NODE_TEST
    return None


# -- Go -----------------------------------------------------------------------------

_GO_TOOLCHAIN = re.compile(r"^toolchain\s+go(\d+\.\d+(?:\.\d+)?)\s*$", re.M)
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.M)


def _go(top: set[str], read: ReadFile, asdf: dict[str, str]) -> Toolchain | None:
    if "go.mod" not in top:
        return None
    gomod = read_text(read, "go.mod")
    version, version_from = _version_file(read, top, (), asdf, "golang", "go")
    for pattern, where in ((_GO_TOOLCHAIN, "go.mod toolchain"), (_GO_DIRECTIVE, "go.mod go")):
        if version is None and (m := pattern.search(gomod)):
            version, version_from = m.group(1), where
    # A vendored module builds from vendor/: the images' GOFLAGS=-mod=mod would ignore it.
    vendored = "vendor/modules.txt" in top
    test = "go test -mod=vendor ./..." if vendored else "go test ./..."
    return Toolchain(
        Ecosystem.GO,
        "go.mod" + (", vendor/modules.txt" if vendored else ""),
        ("" if vendored else "go mod download && ") + warm(test.replace(" ./", " -run '^$' ./")),
        test,
        "go",
        version=version,
        version_from=version_from,
        reporter=Reporter.GO_JSON,
    )


# -- Rust ---------------------------------------------------------------------------


def _rust(top: set[str], read: ReadFile, asdf: dict[str, str]) -> Toolchain | None:
    if "Cargo.toml" not in top:
        return None
    version, version_from = None, None
    if "rust-toolchain.toml" in top:
        channel = _dig(_toml(read, "rust-toolchain.toml"), "toolchain", "channel")
        if isinstance(channel, str):
            version, version_from = channel, "rust-toolchain.toml"
    elif "rust-toolchain" in top:
        # The legacy file is either a bare channel or the TOML form.
        text = read_text(read, "rust-toolchain")
        channel = _dig(_toml(read, "rust-toolchain"), "toolchain", "channel")
        value = channel if isinstance(channel, str) else text.strip() or None
        version, version_from = value, "rust-toolchain"
    if version is None and "rust" in asdf:
        version, version_from = asdf["rust"], ".tool-versions"
    if version is None:
        declared = _dig(_toml(read, "Cargo.toml"), "package", "rust-version")
        if isinstance(declared, str):
            version, version_from = declared, "Cargo.toml rust-version"
    return Toolchain(
        Ecosystem.RUST,
        "Cargo.toml",
        "cargo fetch && " + warm("cargo test --no-run"),
        "cargo test",
        "cargo",
        version=version,
        version_from=version_from,
        reporter=Reporter.CARGO,
    )


# -- JVM ----------------------------------------------------------------------------

_MAVEN_RELEASE = re.compile(
    r"<(maven\.compiler\.release|maven\.compiler\.source|release|java\.version)>\s*"
    r"(?:1\.)?(\d+)\s*</\1>"
)
_GRADLE_TOOLCHAIN = re.compile(
    r"languageVersion(?:\.set\(|\s*=\s*)\s*JavaLanguageVersion\.of\((\d+)\)"
)


def _jvm(top: set[str], read: ReadFile, asdf: dict[str, str]) -> Toolchain | None:
    version, version_from = _version_file(read, top, (".java-version",), asdf, "java")
    if version is not None:
        # asdf writes `temurin-21.0.2+13.0.LTS`; the major is what picks a JDK.
        m = re.search(r"(\d+)", version.removeprefix("1."))
        version = m.group(1) if m else version
    gradle = sorted(
        {"build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts"} & top
    )
    if "pom.xml" in top:
        if version is None and (m := _MAVEN_RELEASE.search(read_text(read, "pom.xml"))):
            version, version_from = m.group(2), f"pom.xml {m.group(1)}"
        mvn = "./mvnw" if "mvnw" in top else "mvn"
        return Toolchain(
            Ecosystem.JVM,
            "pom.xml" + (", mvnw" if mvn != "mvn" else ""),
            f"{mvn} -B -q dependency:go-offline",
            f"{mvn} -B -o test",
            "maven",
            version=version,
            version_from=version_from,
            reporter=Reporter.SUREFIRE,
        )
    if gradle:
        if version is None:
            for name in gradle:
                if m := _GRADLE_TOOLCHAIN.search(read_text(read, name)):
                    version, version_from = m.group(1), f"{name} toolchain"
                    break
        wrapper = "gradlew" in top
        gradlew = "./gradlew" if wrapper else "gradle"
        return Toolchain(
            Ecosystem.JVM,
            ", ".join(gradle + (["gradlew"] if wrapper else [])),
            f"{gradlew} --no-daemon testClasses",
            f"{gradlew} --no-daemon --offline test",
            "gradle",
            version=version,
            version_from=version_from,
            reporter=Reporter.GRADLE,
        )
    return None


# -- all together -------------------------------------------------------------------

ORDER = (Ecosystem.PYTHON, Ecosystem.NODE, Ecosystem.GO, Ecosystem.RUST, Ecosystem.JVM)
"""Which ecosystem's tests are the repository's when several have some: the order the
detection has always used (pytest, then npm, go, cargo), the JVM last."""


def detect_toolchains(paths: list[str], read: ReadFile) -> list[Toolchain]:
    """Every ecosystem the repository's top-level files declare, in ORDER."""
    top = set(paths)
    asdf = tool_versions(read, top)
    found = (
        _python(paths, top, read, asdf),
        _node(top, read, asdf),
        _go(top, read, asdf),
        _rust(top, read, asdf),
        _jvm(top, read, asdf),
    )
    return [t for t in found if t is not None]


def describe(toolchains: list[Toolchain]) -> str:
    """One line per ecosystem, for people and for the model: what was found and why."""
    lines = []
    for t in toolchains:
        asks = f", asks for {t.version} ({t.version_from})" if t.version else ""
        via = f" with {t.tool}" if t.tool not in (t.ecosystem.value, "pip") else ""
        tests = f"; tests: `{t.test}`" if t.test else "; no tests of its own"
        lines.append(f"{t.ecosystem.value}{via} (from {t.evidence}{asks}){tests}")
    return "\n".join(lines)
