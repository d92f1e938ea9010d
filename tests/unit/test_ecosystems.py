"""Detection of a repository's toolchains from its files: ecosystem, package manager,
the version asked for and where, setup, test command and per-test reporter."""

from __future__ import annotations

import json

from workers.engine.ecosystems import Ecosystem, Reporter, Toolchain, describe, detect_toolchains
from workers.engine.repo_config import detect

# The build during setup that leaves Go's build cache warm in the snapshot.
WARM_GO = "{ go test -run '^$' ./... >/dev/null 2>&1 || true; }"


def found(files: dict[str, str]) -> list[Toolchain]:
    return detect_toolchains(list(files), lambda p: files[p].encode() if p in files else None)


def one(files: dict[str, str]) -> Toolchain:
    (toolchain,) = found(files)
    return toolchain


def package(test: str | None = None, **extra: object) -> str:
    manifest: dict[str, object] = {"name": "demo", "version": "1.0.0", **extra}
    if test is not None:
        manifest["scripts"] = {"test": test}
    return json.dumps(manifest)


def test_node_with_npm_and_its_runner() -> None:
    t = one({"package.json": package("node --test"), "package-lock.json": "{}"})
    assert (t.ecosystem, t.tool, t.setup, t.test) == (
        Ecosystem.NODE,
        "npm",
        "npm ci",
        "npm test",
    )
    assert t.reporter is Reporter.NODE_TEST and t.evidence == "package.json, package-lock.json"
    assert one({"package.json": package("jest --ci")}).reporter is Reporter.JEST
    assert one({"package.json": package("vitest run")}).reporter is Reporter.VITEST
    assert one({"package.json": package("mocha")}).reporter is None  # exit status only
    assert one({"package.json": package("mocha")}).setup == "npm install"  # no lock file


def test_node_without_tests_is_still_an_ecosystem() -> None:
    default = 'echo "Error: no test specified" && exit 1'
    t = one({"package.json": package(default)})
    assert t.ecosystem is Ecosystem.NODE and t.test is None
    assert one({"package.json": "not json"}).test is None  # broken manifest: no crash


def test_yarn_and_pnpm_through_corepack() -> None:
    yarn = one({"package.json": package("jest"), "yarn.lock": ""})
    assert (yarn.tool, yarn.setup, yarn.test) == (
        "yarn",
        "corepack yarn install --immutable",
        "yarn test",
    )
    pnpm = one({"package.json": package("vitest"), "pnpm-lock.yaml": ""})
    assert (pnpm.tool, pnpm.setup) == ("pnpm", "corepack pnpm install --frozen-lockfile")
    # packageManager is corepack's own statement: it wins over a stray lock file.
    declared = one({"package.json": package("jest", packageManager="pnpm@9.1.0"), "yarn.lock": ""})
    assert (declared.tool, declared.setup) == ("pnpm", "corepack pnpm install")


def test_node_version_files_in_order() -> None:
    files = {"package.json": package("jest", engines={"node": ">=18"})}
    assert (one(files).version, one(files).version_from) == (">=18", "package.json engines.node")
    files[".tool-versions"] = "nodejs 20.11.0\npython 3.12.1\n"
    assert (one(files).version, one(files).version_from) == ("20.11.0", ".tool-versions")
    files[".node-version"] = "21\n"
    assert one(files).version == "21"
    files[".nvmrc"] = "# LTS\nv20\n"
    assert (one(files).version, one(files).version_from) == ("v20", ".nvmrc")


def test_go_versions_and_vendoring() -> None:
    gomod = "module example.com/demo\n\ngo 1.22\n"
    t = one({"go.mod": gomod})
    assert (t.test, t.setup, t.reporter) == (
        "go test ./...",
        "go mod download && " + WARM_GO,
        Reporter.GO_JSON,
    )
    assert (t.version, t.version_from) == ("1.22", "go.mod go")
    t = one({"go.mod": gomod + "\ntoolchain go1.23.4\n"})
    assert (t.version, t.version_from) == ("1.23.4", "go.mod toolchain")
    # Vendored modules need no download: setup has nothing to do.
    assert one({"go.mod": gomod, "vendor/modules.txt": ""}).setup == WARM_GO.replace(
        "-run", "-mod=vendor -run"
    )
    assert one({"go.mod": gomod, "vendor/modules.txt": ""}).test == "go test -mod=vendor ./..."


def test_rust_versions() -> None:
    cargo = '[package]\nname = "demo"\nversion = "0.1.0"\nrust-version = "1.74"\n'
    t = one({"Cargo.toml": cargo})
    assert (t.test, t.setup, t.reporter) == (
        "cargo test",
        "cargo fetch && { cargo test --no-run >/dev/null 2>&1 || true; }",
        Reporter.CARGO,
    )
    assert (t.version, t.version_from) == ("1.74", "Cargo.toml rust-version")
    toolchain = '[toolchain]\nchannel = "1.78.0"\ncomponents = ["clippy"]\n'
    t = one({"Cargo.toml": cargo, "rust-toolchain.toml": toolchain})
    assert (t.version, t.version_from) == ("1.78.0", "rust-toolchain.toml")
    assert one({"Cargo.toml": cargo, "rust-toolchain": "stable\n"}).version == "stable"
    assert one({"Cargo.toml": "not [ toml"}).version is None  # broken manifest: no crash


def test_jvm_maven_and_gradle() -> None:
    pom = (
        "<project><properties><maven.compiler.release>17</maven.compiler.release>"
        "</properties></project>"
    )
    t = one({"pom.xml": pom})
    assert (t.tool, t.test, t.reporter) == ("maven", "mvn -B -o test", Reporter.SUREFIRE)
    assert (t.version, t.version_from) == ("17", "pom.xml maven.compiler.release")
    assert one({"pom.xml": pom, "mvnw": ""}).test == "./mvnw -B -o test"
    old = "<project><properties><maven.compiler.source>1.8</maven.compiler.source></properties>"
    assert one({"pom.xml": old + "</project>"}).version == "8"
    kts = "java {\n  toolchain {\n    languageVersion = JavaLanguageVersion.of(21)\n  }\n}\n"
    g = one({"build.gradle.kts": kts, "settings.gradle.kts": "", "gradlew": ""})
    assert (g.tool, g.test, g.reporter) == (
        "gradle",
        "./gradlew --no-daemon --offline test",
        Reporter.GRADLE,
    )
    assert (g.version, g.version_from) == ("21", "build.gradle.kts toolchain")
    # asdf's JDK names carry a vendor; the major is what picks a JDK.
    assert (
        one({"pom.xml": "<project/>", ".tool-versions": "java temurin-21.0.2+13"}).version == "21"
    )
    assert one({"pom.xml": "<project/>", ".java-version": "1.8\n"}).version == "8"


def test_python_as_before() -> None:
    t = one({"tests/test_x.py": "", "requirements.txt": ""})
    assert (t.test, t.setup, t.reporter) == (
        "python -m pytest",
        "pip install -r requirements.txt",
        Reporter.PYTEST,
    )
    t = one({"pyproject.toml": "[project]\nname='x'\n", ".python-version": "3.12\n"})
    assert (t.test, t.setup, t.version) == (None, "pip install -e .", "3.12")


def test_several_ecosystems_are_all_set_up_and_all_tested() -> None:
    files = {
        "pyproject.toml": "[project]\nname = 'svc'\n",  # a Python service without tests
        "package.json": package("jest"),  # whose front end has them
        "package-lock.json": "{}",
        "go.mod": "module x\n\ngo 1.21\n",
    }
    assert [t.ecosystem for t in found(files)] == [Ecosystem.PYTHON, Ecosystem.NODE, Ecosystem.GO]
    config = detect(list(files), lambda p: files[p].encode() if p in files else None)
    assert config.setup == "pip install -e . && npm ci && go mod download && " + WARM_GO
    # Every test command runs; the run fails when any of them does.
    assert (
        config.test == "status=0; npm test || status=$?; go test ./... || status=$?; exit $status"
    )
    assert config.source == "detected (npm, go)"
    assert config.reporters == [Reporter.JEST, Reporter.GO_JSON]
    text = describe(found(files))
    assert "node with npm (from package.json, package-lock.json); tests: `npm test`" in text
    assert "python (from pyproject.toml); no tests of its own" in text
    assert "go (from go.mod, asks for 1.21 (go.mod go)); tests: `go test ./...`" in text


def test_nothing_found() -> None:
    assert found({"README.md": "# hi"}) == []
    assert detect(["README.md"], lambda _p: None).test is None
