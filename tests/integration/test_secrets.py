"""Secrets never reach the sandbox or the model. A full run through the worker process,
the fake GitHub and Docker, where the scripted model spends its first turns searching the
sandbox (environment, files, processes, sockets, git configuration) for the App's private
key, the installation tokens and the webhook secret; then it fixes the bug. Nothing it
saw, nothing in the trajectory, the pull request or the comments holds a secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import FIX_STEPS, call, step, wait_for
from tests.integration.test_comment_to_pr import SECRET, Stack, stack  # noqa: F401  (the fixture)

SEARCHES = [
    "env; cat /proc/1/environ | tr '\\0' '\\n'",
    "ps -eo user,args; ls -la /var/run /run /tmp 2>&1",
    "find / -xdev \\( -name '*.pem' -o -name '*.key' -o -name 'docker.sock' \\) "
    "2>/dev/null | head -50; cat .git/config",
    "grep -rIl -e 'PRIVATE KEY' -e 'x-access-token' -e 'ghs_' / --exclude-dir=proc "
    "--exclude-dir=sys 2>/dev/null | head -20",
]


def test_nothing_secret_is_found_or_leaked(
    stack: Callable[..., Stack],  # noqa: F811
    tmp_path: Path,
) -> None:
    steps = [step(call("bash", command=command)) for command in SEARCHES] + FIX_STEPS
    s = stack(steps)
    s.start_worker()
    answer = s.comment("@qwenfix fix", "delivery-secrets")
    job_id = answer.json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "resolved"

    key_lines = [
        line for line in s.fake.private_key_pem.splitlines() if line and "PRIVATE KEY" not in line
    ]
    tokens = list(s.fake.grants)
    assert tokens, "the worker used installation tokens"
    secrets = [*tokens, *key_lines[:3], SECRET]

    seen = json.dumps(s.model.requests)  # every request: the tool outputs included
    outputs = [m["content"] for m in s.model.requests[-1]["messages"] if m["role"] == "tool"]
    assert any("PATH=" in o for o in outputs)  # the searches really ran
    assert "docker.sock" not in "".join(outputs[2:3])
    trajectories = "".join(p.read_text() for p in (tmp_path / "trajectories").rglob("*.jsonl"))
    [pull] = s.fake.open_pulls("octo-org/hello-world")
    published = json.dumps([pull, list(s.fake.comments.values())])
    log = (tmp_path / "worker.log").read_text()
    for secret in secrets:
        for where, text in (
            ("model requests", seen),
            ("trajectories", trajectories),
            ("pull request and comments", published),
            ("worker log", log),
        ):
            assert secret not in text, f"a secret reached the {where}"
