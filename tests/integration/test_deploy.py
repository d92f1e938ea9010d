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


def test_compose_runs_every_part_with_health_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"api", "worker", "beat", "redis", "postgres", *PROFILES}
    for name in ("api", "redis", "postgres", *PROFILES):
        assert services[name]["healthcheck"]["test"], name
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["command"][:2] == ["qwenfix", "serve"]
    assert services["beat"]["command"] == ["qwenfix", "beat"]
    worker = services["worker"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in json.dumps(worker["volumes"])
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
    scaled = next(d for _, d in documents if d["kind"] == "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "worker"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "agent"


def test_kubernetes_keeps_secrets_with_the_workers_and_serves_the_recipe() -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d for _, d in k8s_documents()}

    def pod(name: str) -> dict[str, Any]:
        kind = "StatefulSet" if ("StatefulSet", name) in documents else "Deployment"
        spec: dict[str, Any] = documents[(kind, name)]["spec"]["template"]["spec"]
        return spec

    assert "github-app.pem" in json.dumps(pod("worker")["volumes"])
    for name in ("api", "beat"):
        assert "github-app" not in json.dumps(pod(name)), name
        assert pod(name)["securityContext"]["runAsNonRoot"] is True
    assert documents[("Deployment", "beat")]["spec"]["replicas"] == 1
    [vllm] = pod("vllm")["containers"]
    assert vllm["command"] + vllm["args"] == vllm_command(SMALL, gpus=1).argv
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    worker_env = {e["name"]: e.get("value") for e in pod("worker")["containers"][0]["env"]}
    assert worker_env["DOCKER_HOST"] == "tcp://sandbox-host:2376"
    assert worker_env["DOCKER_TLS_VERIFY"] == "1"


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
    assert any(line.startswith("HEALTHCHECK") for line in final)
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


def test_the_app_manifest_asks_for_every_event_routed_and_only_needed_rights() -> None:
    manifest = json.loads((DEPLOY / "github-app-manifest.json").read_text())
    automatic = {"installation", "installation_repositories", "ping"}
    routed = {event for event, _ in ROUTES} - automatic
    assert set(manifest["default_events"]) == routed
    assert manifest["default_permissions"] == {
        "metadata": "read",
        "contents": "write",
        "issues": "write",
        "pull_requests": "write",
        "checks": "read",
        "actions": "read",
    }
    assert manifest["hook_attributes"]["url"].endswith("/webhook")
    assert manifest["public"] is False
