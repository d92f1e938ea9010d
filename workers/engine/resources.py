"""Files shipped with qwenfix (prompts, the demo repository), found in a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path


def resource_dir(name: str) -> Path:
    package = Path(__file__).resolve().parents[1]  # workers/, where a wheel puts them
    for candidate in (package / f"_{name}", package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{name}/ directory not found next to the workers package")
