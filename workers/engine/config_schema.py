"""The published JSON Schema of the config file (docs/qwenfix.schema.json), generated from
the pydantic model that reads it, so that the two cannot drift apart: a test fails when
the published file is stale. Regenerate with
`python -m workers.engine.config_schema docs/qwenfix.schema.json`.

Editors use it through a modeline at the top of the file:
`# yaml-language-server: $schema=<URL of docs/qwenfix.schema.json>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from workers.engine.repo_config import CONFIG_FILES, RepoConfig

SCHEMA_ID = "https://github.com/your-org/qwenfix/raw/main/docs/qwenfix.schema.json"
# Set by qwenfix (where the config came from), never by the file.
INTERNAL = ("source",)


def config_schema() -> dict[str, Any]:
    schema = RepoConfig.model_json_schema(mode="validation")
    for name in INTERNAL:
        schema["properties"].pop(name, None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "qwenfix configuration",
        "description": (
            f"{' or '.join(CONFIG_FILES)} in a repository (the first present wins), and "
            "the same file in the owner's .github repository for owner-wide defaults, "
            "which the repository's file overrides key by key at the top level."
        ),
    }


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(schema_text())
