"""What can be checked of the deployment without a GPU or a registry: the compose file
(by docker-compose itself), the Kubernetes manifests (against Kubernetes' schemas,
offline), the Dockerfiles' shape, the App manifest against the routes, and the vLLM
command lines everywhere against the one recipe in code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.receiver.routing import ROUTES
from workers.cli.model_serving import LARGE_FP8, SMALL, ServingError, vllm_command
from workers.runtime.celery_app import celery_config
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
QWENFIX = str(Path(sys.executable).parent / "qwenfix")
PROFILES = {
    "vllm": (SMALL, 1, 262_144),
    "vllm-large": (LARGE_FP8, 8, 262_144),
    "vllm-long": (SMALL, 4, 1_048_576),
}


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (with the example settings)."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing; `make test` installs it")
    work = tmp_path_factory.mktemp("compose") / "deploy"
    shutil.copytree(DEPLOY, work)
    shutil.copy(work / "qwenfix.env.example", work / "qwenfix.env")
    (work / "github-app.pem").write_text("not a key\n")
    done = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = yaml.safe_load(done.stdout)
    return loaded


def longest_job_limit(environment: dict[str, str]) -> int:
    """The jobs' hard time limit (celery_config's task_time_limit) with these settings."""
    # The settings longest_job_s adds up, as the deployment sets them (or the defaults).
    fields = {
        name: environment[f"QWENFIX_{name.upper()}"]
        for name in ("max_wall_s", "setup_timeout_s", "test_timeout_s")
        if f"QWENFIX_{name.upper()}" in environment
    }
    limit: int = celery_config(WorkerSettings(**fields))["task_time_limit"]
    return limit


def seconds(duration: str | int) -> int:
    """A compose duration (76m, 1h30m, 90s) in seconds."""
    if isinstance(duration, int):
        return duration
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def test_compose_runs_every_part_with_health_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "migrate",
        "api",
        "worker-quick",
        "worker-agent",
        "beat",
        "redis",
        "postgres",
        *PROFILES,
    }
    for name in ("redis", "postgres", *PROFILES):
        assert services[name]["healthcheck"]["test"], name
    assert services["api"]["command"][:2] == ["qwenfix", "serve"]
    assert services["beat"]["command"] == ["qwenfix", "beat"]
    agent, quick = services["worker-agent"], services["worker-quick"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in json.dumps(agent["volumes"])
    assert "docker.sock" not in json.dumps(quick)  # quick jobs run no sandbox
    for worker in (agent, quick):
        assert [s["source"] for s in worker["secrets"]] == ["github-app-key"]
    assert "secrets" not in services["api"]  # the receiver never holds the App's key
    for name in PROFILES:
        vllm = services[name]
        assert "model-weights" in json.dumps(vllm["volumes"]), name
        assert vllm["profiles"] and vllm["networks"]["default"]["aliases"] == ["vllm"]
    gpus = {
        n: services[n]["deploy"]["resources"]["reservations"]["devices"][0]["count"]
        for n in PROFILES
    }
    assert gpus == {"vllm": 1, "vllm-large": 8, "vllm-long": 4}


def test_compose_separates_quick_and_agent_workers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    queues = {}
    for name in ("worker-quick", "worker-agent"):
        command = services[name]["command"]
        assert command[:2] == ["qwenfix", "worker"], name
        assert "--pool" not in command  # prefork, the CLI's default: time limits hold
        queues[name] = command[command.index("--queues") + 1]
    assert queues == {"worker-quick": "quick", "worker-agent": "agent"}
    # `docker compose stop` lets an agent run end: the grace is at least its hard limit.
    agent = services["worker-agent"]
    assert seconds(agent["stop_grace_period"]) >= longest_job_limit(agent["environment"])


def test_compose_probes_each_service_for_what_it_runs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        command = service.get("command") or []
        test = service["healthcheck"].get("test") or []
        if command[:1] != ["qwenfix"]:
            continue
        role = command[1]
        if role == "serve":
            port = command[command.index("--port") + 1]
            assert re.search(rf"127\.0\.0\.1:{port}/(readyz|healthz)", " ".join(test)), name
        elif role in ("worker", "beat"):
            assert test == ["CMD", "qwenfix", "health", role], name
        else:  # a one-off: the image's probe would only be noise
            assert role == "migrate" and test == ["NONE"], name


def test_compose_migrates_once_before_anything_uses_the_database(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["qwenfix", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker-quick", "worker-agent", "beat"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
        assert services[name]["environment"]["QWENFIX_MIGRATE_ON_START"] == "false", name


def test_compose_keeps_redis_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    [volume] = redis["volumes"]
    source, target = volume.split(":")[:2]
    assert target == "/data" and source in compose["volumes"]  # a named volume


@pytest.mark.parametrize("service", sorted(PROFILES))
def test_each_model_service_serves_what_the_recipe_says(
    compose: dict[str, Any], service: str
) -> None:
    model, gpus, window = PROFILES[service]
    expected = vllm_command(model, gpus=gpus, max_context=window)
    vllm = compose["services"][service]
    assert vllm["entrypoint"] + vllm["command"] == expected.argv
    environment = vllm.get("environment") or {}
    assert {k: environment.get(k) for k in expected.env} == expected.env
    for flag in (
        "--enable-auto-tool-choice",
        "--enable-prompt-tokens-details",
        "--enable-prefix-caching",
    ):
        assert flag in expected.argv
    assert expected.argv[expected.argv.index("--tool-call-parser") + 1] == "qwen3_coder"


def test_the_recipes_for_the_large_model_and_the_long_window() -> None:
    large = vllm_command(LARGE_FP8, gpus=8)
    assert "--data-parallel-size" in large.argv and "--enable-expert-parallel" in large.argv
    assert "--tensor-parallel-size" not in large.argv
    assert large.env == {"VLLM_USE_DEEP_GEMM": "1"}
    long = vllm_command(SMALL, gpus=4, max_context=1_048_576)
    overrides = json.loads(long.argv[long.argv.index("--hf-overrides") + 1])
    assert overrides["rope_scaling"] == {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 262_144,
    }
    assert long.env == {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}
    for bad in (
        dict(model=LARGE_FP8, gpus=4),
        dict(max_context=2_000_000),
        dict(max_context=1_048_576, gpus=1),
    ):
        with pytest.raises(ServingError):
            vllm_command(**bad)  # type: ignore[arg-type]


def test_model_serve_prints_or_explains() -> None:
    done = subprocess.run(
        [QWENFIX, "model", "serve", "--dry-run", "--gpus", "8", "--model", LARGE_FP8],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == vllm_command(LARGE_FP8, gpus=8).shell()
    refused = subprocess.run(
        [QWENFIX, "model", "serve", "--model", LARGE_FP8, "--gpus", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "needs 8 GPUs" in refused.stderr
    missing = subprocess.run(
        [QWENFIX, "model", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode == 2 and "pip install 'qwenfix[gpu]'" in missing.stderr


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()):
            out.append((name, document))
    return out


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    documents = k8s_documents()
    kinds = sorted({d["kind"] for _, d in documents})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Ingress",
        "Job",
        "Namespace",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "ScaledObject",
        "Service",
        "StatefulSet",
    ]
    version = kubernetes_validate.latest_version()
    for _, document in documents:
        if document["kind"] == "ScaledObject":
            continue  # KEDA's own resource: checked below
        kubernetes_validate.validate(document, version, strict=True)
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, version, strict=True)


def k8s_by_name() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in k8s_documents()}


def k8s_pod(name: str) -> dict[str, Any]:
    documents = k8s_by_name()
    kind = next(k for k in ("StatefulSet", "Deployment", "Job") if (k, name) in documents)
    spec: dict[str, Any] = documents[(kind, name)]["spec"]["template"]["spec"]
    return spec


def k8s_config() -> dict[str, str]:
    data: dict[str, str] = k8s_by_name()[("ConfigMap", "qwenfix-config")]["data"]
    return data


def test_kubernetes_scales_quick_and_agent_workers_each_on_its_queue() -> None:
    documents = k8s_by_name()
    scaled = {name: d for (kind, name), d in documents.items() if kind == "ScaledObject"}
    assert set(scaled) == {"worker-quick", "worker-agent"}
    for name, document in scaled.items():
        assert document["apiVersion"] == "keda.sh/v1alpha1"
        target = document["spec"]["scaleTargetRef"]["name"]
        assert ("Deployment", target) in documents, name
        [trigger] = document["spec"]["triggers"]
        [container] = k8s_pod(target)["containers"]
        args = container["args"]
        assert args[:2] == ["qwenfix", "worker"] and "--pool" not in args  # prefork
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == args[args.index("--queues") + 1], name
        assert trigger["metadata"]["address"].startswith("redis.")
    assert (
        documents[("ScaledObject", "worker-quick")]["spec"]["triggers"][0]["metadata"]["listName"]
        == "quick"
    )
    # A scale-down lets the running agent jobs end: the grace outlasts the hard limit
    # (and the choice of a Deployment over a ScaledJob is written next to it).
    agent = k8s_pod("worker-agent")
    assert agent["terminationGracePeriodSeconds"] >= longest_job_limit(k8s_config())
    worker_yaml = (DEPLOY / "k8s" / "worker.yaml").read_text()
    assert "not a ScaledJob" in worker_yaml
    # Only agent workers reach the sandbox host.
    policy = documents[("NetworkPolicy", "sandbox-host")]["spec"]["ingress"][0]["from"][0]
    assert policy["podSelector"]["matchLabels"] == {"app": "worker-agent"}


def test_kubernetes_probes_each_part_for_what_it_runs() -> None:
    [api] = k8s_pod("api")["containers"]
    port = {p["name"]: p["containerPort"] for p in api["ports"]}["http"]
    assert str(port) == api["args"][api["args"].index("--port") + 1]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    for name, role in (("worker-quick", "worker"), ("worker-agent", "worker"), ("beat", "beat")):
        [container] = k8s_pod(name)["containers"]
        assert container["args"][:2] == ["qwenfix", role], name
        queues = (
            container["args"][container["args"].index("--queues") + 1] if role == "worker" else None
        )
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["qwenfix", "health", role], (name, probe)
            if queues:
                assert command[command.index("--queues") + 1] == queues, (name, probe)
            assert container[probe]["timeoutSeconds"] >= 5, (name, probe)


def test_kubernetes_migrates_in_a_job_the_others_wait_for() -> None:
    documents = k8s_by_name()
    job = documents[("Job", "migrate")]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["qwenfix", "migrate"]
    assert k8s_config()["QWENFIX_MIGRATE_ON_START"] == "false"
    assert documents[("Deployment", "api")]["spec"]["replicas"] >= 2  # why it matters
    for name in ("api", "worker-quick", "worker-agent"):
        [init] = k8s_pod(name)["initContainers"]
        assert init["args"][:3] == ["qwenfix", "migrate", "--check"], name
        assert "--wait" in init["args"], name


def test_kubernetes_keeps_redis_on_a_persistent_volume() -> None:
    redis = k8s_by_name()[("StatefulSet", "redis")]
    [container] = redis["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--appendonly", "yes"]
    [mount] = container["volumeMounts"]
    assert mount["mountPath"] == "/data"
    [claim] = redis["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == mount["name"]
    assert "emptyDir" not in json.dumps(redis["spec"]["template"]["spec"].get("volumes", []))


def test_kubernetes_keeps_secrets_with_the_workers_and_serves_the_recipe() -> None:
    documents = k8s_by_name()
    for name in ("worker-quick", "worker-agent"):
        assert "github-app.pem" in json.dumps(k8s_pod(name)["volumes"]), name
    for name in ("api", "beat", "migrate"):
        assert "github-app" not in json.dumps(k8s_pod(name)), name
        assert k8s_pod(name)["securityContext"]["runAsNonRoot"] is True
    assert documents[("Deployment", "beat")]["spec"]["replicas"] == 1
    [vllm] = k8s_pod("vllm")["containers"]
    assert vllm["command"] + vllm["args"] == vllm_command(SMALL, gpus=1).argv
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    worker_env = {
        e["name"]: e.get("value") for e in k8s_pod("worker-agent")["containers"][0]["env"]
    }
    assert worker_env["DOCKER_HOST"] == "tcp://sandbox-host:2376"
    assert worker_env["DOCKER_TLS_VERIFY"] == "1"
    quick_env = {e["name"] for e in k8s_pod("worker-quick")["containers"][0]["env"]}
    assert "DOCKER_HOST" not in quick_env


def dockerfile_stages(path: Path) -> list[list[str]]:
    """Instructions (continuations joined, comments dropped), split by FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_qwenfix_image_is_multi_stage_non_root_and_lean() -> None:
    stages = dockerfile_stages(DEPLOY / "Dockerfile")
    assert len(stages) == 2
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert not any(re.search(r"build-essential|\bgcc\b|\bmake\b", line) for line in final)
    assert any(line.startswith("COPY --from=build") for line in final)
    [healthcheck] = [line for line in final if line.startswith("HEALTHCHECK")]
    # What the main process runs decides what is probed (`qwenfix health`): no worker or
    # beat is judged by a port it does not serve.
    assert healthcheck.endswith('CMD ["qwenfix", "health"]')
    assert any(line.startswith("CMD") for line in final)
    copied = [line.split()[1] for line in stages[0] if line.startswith("COPY ")]
    for package in ("bot", "workers", "sandbox", "prompts", "examples"):
        assert package in copied, package  # everything the wheel includes


def test_the_sandbox_images_agree() -> None:
    """The registry-built image and the offline one have the same user and workdir."""
    dockerfile = (DEPLOY / "sandbox" / "Dockerfile").read_text()
    offline = (ROOT / "scripts" / "build-sandbox-image.sh").read_text()
    for text in (dockerfile, offline):
        assert re.search(r"useradd[^\n]*--uid 1000[^\n]*sandbox", text)
        assert "/workspace" in text and "git" in text


# Why the App asks for each permission: (level, what needs it). A token's permissions are
# checked against the code below; an event's against EVENT_NEEDS.
PERMISSIONS_NEEDED = {
    "metadata": ("read", "every installation token (GitHub gives it to all)"),
    "contents": ("write", "clone (READ_PERMISSIONS) and push (PUSH_PERMISSIONS); push events"),
    "issues": ("write", "status comments and reactions; issues and issue_comment events"),
    "pull_requests": ("write", "pull requests, reviews, replies; pull_request* events"),
    "checks": ("read", "failing check runs for fix-ci and maintenance; check_suite events"),
    "actions": ("read", "workflow_run events: GitHub sends them only with this"),
    "workflows": ("write", "pushing a change under .github/workflows/: allow_workflow_changes"),
}
# The permission GitHub requires before it delivers each event to an App.
EVENT_NEEDS = {
    "issues": "issues",
    "issue_comment": "issues",
    "pull_request": "pull_requests",
    "pull_request_review": "pull_requests",
    "pull_request_review_comment": "pull_requests",
    "check_suite": "checks",
    "workflow_run": "actions",
    "push": "contents",
}
LEVELS = {"read": 1, "write": 2}


def _token_permissions() -> dict[str, str]:
    """The most each permission is asked for by any token the workers mint."""
    from workers.github import app_auth
    from workers.jobs.handlers import HANDLERS

    asked = [
        app_auth.ACKNOWLEDGE_PERMISSIONS,
        app_auth.RUN_PERMISSIONS,
        app_auth.PUSH_PERMISSIONS,
        app_auth.READ_PERMISSIONS,
        app_auth.WORKFLOW_PUSH_PERMISSIONS,
        *(app_auth.RUN_PERMISSIONS | h.permissions for h in HANDLERS.values()),
    ]
    most: dict[str, str] = {}
    for permissions in asked:
        for name, level in permissions.items():
            if name not in most or LEVELS[level] > LEVELS[most[name]]:
                most[name] = level
    return most


def test_the_app_manifest_asks_for_every_event_routed_and_only_needed_rights() -> None:
    from workers.engine.repo_config import RepoConfig

    manifest = json.loads((DEPLOY / "github-app-manifest.json").read_text())
    automatic = {"installation", "installation_repositories", "ping"}
    routed = {event for event, _ in ROUTES} - automatic
    assert set(manifest["default_events"]) == routed
    wanted = manifest["default_permissions"]
    assert wanted == {name: level for name, (level, _) in PERMISSIONS_NEEDED.items()}
    # Every permission is used: a token asks for it at that level, or an event needs it.
    tokens = _token_permissions()
    by_events = {EVENT_NEEDS[event] for event in routed}
    for name, level in wanted.items():
        assert tokens.get(name) == level or (name in by_events and level == "read"), name
    # Nothing is asked for that the manifest does not grant, and every event is delivered.
    for name, level in tokens.items():
        assert LEVELS[wanted[name]] >= LEVELS[level], name
    assert by_events <= set(wanted)
    # `workflows` is for one feature only: the repository's opt-in.
    assert "allow_workflow_changes" in RepoConfig.model_fields
    assert manifest["hook_attributes"]["url"].endswith("/webhook")
    assert manifest["public"] is False
