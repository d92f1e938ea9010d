"""The published JSON Schema of the config file is the pydantic model's, and current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from workers.engine.config_schema import config_schema, schema_text

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "qwenfix.schema.json"


def test_the_published_schema_is_current() -> None:
    assert PUBLISHED.read_text() == schema_text(), (
        "docs/qwenfix.schema.json is stale: run "
        "`python -m workers.engine.config_schema docs/qwenfix.schema.json`"
    )


GOOD = """
test: python -m pytest -q
setup: pip install -e .
limits:
  max_turns: 30
maintenance:
  - task: fix-failing-tests
    schedule: "0 4 * * *"
context:
  exclude: ["vendor/"]
"""


@pytest.mark.parametrize(
    "bad",
    [
        "tset: pytest\n",  # a misspelt key
        "limits:\n  max_turns: 0\n",
        "on_unresolved: open_pr\n",
        "source: here\n",  # qwenfix's own bookkeeping, not a setting
    ],
)
def test_the_schema_accepts_what_qwenfix_accepts_and_refuses_mistakes(bad: str) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    jsonschema.Draft202012Validator.check_schema(config_schema())
    validator.validate(yaml.safe_load(GOOD))
    assert list(validator.iter_errors(yaml.safe_load(bad)))


def test_the_schema_names_itself() -> None:
    schema = json.loads(PUBLISHED.read_text())
    assert schema["$id"].endswith("docs/qwenfix.schema.json")
    assert schema["additionalProperties"] is False
