"""The honesty checks: scripted models that must score 100% and 0%.

- oracle: writes the gold patch's files through the agent's own `write_file` tool (and
  removes deleted ones with `bash`), then submits;
- noop: submits at once, and again, until the run stops.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from unidiff.patch import PatchSet


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def oracle_script(checkout: Path, gold_patch: str) -> dict[str, Any]:
    """Steps that reproduce `gold_patch` on `checkout` (left unchanged)."""
    with tempfile.TemporaryDirectory(prefix="qwenfix-oracle-") as tmp:
        work = Path(tmp) / "tree"
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(checkout), str(work)],
                       check=True, capture_output=True)
        subprocess.run(["git", "-C", str(work), "apply", "--whitespace=nowarn", "-"],
                       input=gold_patch.encode(), check=True, capture_output=True)
        steps = []
        for patched in PatchSet(gold_patch):
            if patched.is_removed_file:
                steps.append(_call("bash", command=f"rm -f -- '{patched.path}'"))
            else:
                steps.append(_call("write_file", path=patched.path,
                                   content=(work / patched.path).read_text()))
    steps.append(_call("submit", summary="Applied the reference patch.", title="Oracle"))
    return {"steps": steps}


def noop_script() -> dict[str, Any]:
    return {"steps": [_call("submit", summary="Nothing to change.", title="Noop")] * 10}
