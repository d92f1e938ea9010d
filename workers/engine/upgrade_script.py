"""Upgrades a repository's dependencies within their declared ranges. Runs INSIDE the
sandbox (standard library, plus pip and npm when present), in the workspace, while the
setup network is up. Prints one line per upgrade and writes a JSON report.

- requirements*.txt (and requirements/*.txt): `name==X` pins are locks, moved to the
  newest release pip resolves within X's major version (0.x: within its minor), within
  any range pyproject.toml declares for the name, and through the file's own index
  options (--index-url, --find-links, --no-index…). With --allow-major, no major bound.
- package.json: `npm update --save` (ranges are the constraints; the lock file follows).
- uv.lock: `uv lock --upgrade`, when uv is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPORT = Path("/tmp/qwenfix/report.json")
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?\s*==\s*"
    r"(?P<version>[A-Za-z0-9.+!_-]+)\s*(?P<rest>(;[^#]*)?(#.*)?)$"
)
OPTION = re.compile(
    r"^(--(index-url|extra-index-url|find-links|no-index|trusted-host|pre)"
    r"|-[if])\b(?P<value>.*)$"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_files(root: Path) -> list[Path]:
    files = sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt"))
    return [f for f in files if f.is_file()]


def declared_ranges(root: Path) -> dict[str, str]:
    """name -> specifier from pyproject.toml's [project] dependencies (all groups)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    import tomllib

    try:
        project = tomllib.loads(path.read_text()).get("project") or {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    specs = list(project.get("dependencies") or [])
    for group in (project.get("optional-dependencies") or {}).values():
        specs += list(group)
    out: dict[str, str] = {}
    for spec in specs:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", spec)
        if match and match.group(3).strip():
            out[canonical(match.group(1))] = match.group(3).strip()
    return out


def upper_bound(version: str) -> str | None:
    parts = re.match(r"^(\d+)(?:\.(\d+))?", version)
    if parts is None:
        return None
    major, minor = int(parts.group(1)), int(parts.group(2) or 0)
    return f"<{major + 1}" if major > 0 else f"<0.{minor + 1}"


def pip_options(path: Path, lines: list[str]) -> list[str]:
    """The file's index options, with relative --find-links made absolute."""
    out = []
    for line in lines:
        stripped = line.split(" #", 1)[0].strip()
        match = OPTION.match(stripped)
        if not match:
            continue
        if stripped.startswith(("--find-links", "-f")):
            value = match.group("value").strip().lstrip("=").strip()
            local = path.parent / value
            if value and "://" not in value and local.exists():
                stripped = f"--find-links {local.resolve()}"
        out.append(stripped)
    return out


def resolve(options: list[str], specs: dict[str, str]) -> dict[str, str]:
    """name -> version pip would install for these specifiers (newest allowed)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join([*options, *(f"{n}{s}" for n, s in specs.items())]) + "\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--disable-pip-version-check",
        "--report",
        "-",
        "-r",
        handle.name,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-1500:] or proc.stdout.strip()[-1500:])
    report = json.loads(proc.stdout)
    return {
        canonical(item["metadata"]["name"]): item["metadata"]["version"]
        for item in report.get("install", [])
    }


def python(root: Path, allow_major: bool, notes: list[str]) -> list[dict[str, str]]:
    ranges = declared_ranges(root)
    upgrades = []
    for path in requirement_files(root):
        lines = path.read_text().splitlines()
        pins: dict[int, re.Match[str]] = {}
        for number, line in enumerate(lines):
            match = PIN.match(line.strip())
            if match:
                pins[number] = match
        if not pins:
            continue
        specs: dict[str, str] = {}
        for match in pins.values():
            name, version = canonical(match.group("name")), match.group("version")
            bound = None if allow_major else upper_bound(version)
            spec = ",".join(s for s in (f">={version}", bound, ranges.get(name)) if s)
            specs[name] = spec
        options = pip_options(path, lines)
        try:
            found = resolve(options, specs)
        except RuntimeError as exc:  # a conflict between pins: try each on its own
            notes.append(
                f"{path.name}: resolving all pins together failed ({exc}); "
                "each pin was resolved on its own"
            )
            found = {}
            for name, spec in specs.items():
                try:
                    found.update(resolve([*options, "--no-deps"], {name: spec}))
                except RuntimeError as single:
                    notes.append(f"{path.name}: {name}: {single}")
        for number, match in pins.items():
            name, old = canonical(match.group("name")), match.group("version")
            new = found.get(name)
            if new and new != old:
                lines[number] = lines[number].replace(f"=={old}", f"=={new}", 1)
                upgrades.append(
                    {
                        "ecosystem": "pip",
                        "file": str(path.relative_to(root)),
                        "name": match.group("name"),
                        "from": old,
                        "to": new,
                    }
                )
        path.write_text("\n".join(lines) + "\n")
    return upgrades


def _lock_versions(root: Path) -> dict[str, str]:
    lock = root / "package-lock.json"
    if not lock.is_file():
        return {}
    packages = json.loads(lock.read_text()).get("packages") or {}
    return {
        key.removeprefix("node_modules/"): str(value.get("version"))
        for key, value in packages.items()
        if key.startswith("node_modules/") and "/node_modules/" not in key[13:]
    }


def npm(root: Path, notes: list[str]) -> list[dict[str, str]]:
    manifest = root / "package.json"
    if not manifest.is_file():
        return []
    if shutil.which("npm") is None:
        notes.append("package.json was not updated: npm is not installed in the sandbox image")
        return []
    direct = {
        **(json.loads(manifest.read_text()).get("dependencies") or {}),
        **(json.loads(manifest.read_text()).get("devDependencies") or {}),
    }
    before_ranges, before = dict(direct), _lock_versions(root)
    proc = subprocess.run(
        ["npm", "update", "--save", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm update failed: {proc.stderr.strip()[-1500:]}")
    after = _lock_versions(root)
    data: dict[str, Any] = json.loads(manifest.read_text())
    after_ranges = {**(data.get("dependencies") or {}), **(data.get("devDependencies") or {})}
    upgrades = []
    for name in sorted(direct):
        old = before.get(name) or before_ranges[name]
        new = after.get(name) or after_ranges.get(name, old)
        if new != old:
            upgrades.append(
                {"ecosystem": "npm", "file": "package.json", "name": name, "from": old, "to": new}
            )
    return upgrades


def _uv_versions(lock: Path) -> dict[str, str]:
    import tomllib

    return {
        p["name"]: p.get("version", "") for p in tomllib.loads(lock.read_text()).get("package", [])
    }


def uv(root: Path, notes: list[str]) -> list[dict[str, str]]:
    lock = root / "uv.lock"
    if not lock.is_file():
        return []
    if shutil.which("uv") is None:
        notes.append("uv.lock was not updated: uv is not installed in the sandbox image")
        return []
    before = _uv_versions(lock)
    proc = subprocess.run(
        ["uv", "lock", "--upgrade"], cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"uv lock --upgrade failed: {proc.stderr.strip()[-1500:]}")
    after = _uv_versions(lock)
    return [
        {"ecosystem": "uv", "file": "uv.lock", "name": name, "from": before[name], "to": version}
        for name, version in sorted(after.items())
        if name in before and before[name] != version
    ]


def main(argv: list[str]) -> int:
    root = Path.cwd()
    report = Path(argv[argv.index("--report") + 1]) if "--report" in argv else REPORT
    notes: list[str] = []
    try:
        upgrades = python(root, "--allow-major" in argv, notes) + npm(root, notes) + uv(root, notes)
    except RuntimeError as exc:
        print(f"upgrade failed: {exc}", file=sys.stderr)
        return 1
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"upgrades": upgrades, "notes": notes}, indent=2))
    for item in upgrades:
        print(f"{item['name']} {item['from']} -> {item['to']} ({item['file']})")
    for note in notes:
        print(f"note: {note}")
    if not upgrades:
        print("no upgrades")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
