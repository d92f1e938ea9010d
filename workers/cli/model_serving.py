"""How to serve Qwen3-Coder with vLLM for qwenfix: the `vllm serve` command line for a
model, a GPU count and a context window. One place in code; `qwenfix model serve` runs
it, and the compose and Kubernetes files are checked against it by the tests."""

from __future__ import annotations

import json

from pydantic import BaseModel

NATIVE_CONTEXT = 262_144
YARN_CONTEXT = 1_048_576
SMALL = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
LARGE_FP8 = "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8"


QWENFIX_FLAGS = [
    # qwenfix needs tool calls parsed server-side, cached-token counts in the usage, and
    # the prefix cache (every turn resends the whole conversation).
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "qwen3_coder",
    "--enable-prompt-tokens-details",
    "--enable-prefix-caching",
]
PARSER_FLAGS = QWENFIX_FLAGS[:3]


class ServingError(ValueError):
    """This model cannot be served like that; the message says what would work."""


class ServeCommand(BaseModel):
    argv: list[str]
    env: dict[str, str]

    def shell(self) -> str:
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (env + " " if env else "") + " ".join(shlex.quote(a) for a in self.argv)


def vllm_command(
    model: str = SMALL,
    *,
    gpus: int = 1,
    max_context: int = NATIVE_CONTEXT,
    host: str = "0.0.0.0",
    port: int = 8000,
    served_name: str | None = None,
) -> ServeCommand:
    if gpus < 1:
        raise ServingError("--gpus must be at least 1")
    if not 4096 <= max_context <= YARN_CONTEXT:
        raise ServingError(f"--max-context must be between 4096 and {YARN_CONTEXT}")
    large = "480B" in model
    if large and gpus < 8:
        raise ServingError(
            f"{model} needs 8 GPUs with 80 GB or more each (8x H100 or H200); "
            f"on {gpus}, serve {SMALL}"
        )
    if max_context > NATIVE_CONTEXT and not large and gpus < 2:
        raise ServingError(
            "a window over 256K needs more KV cache than one GPU holds "
            "beside the weights: use --gpus 2 or more"
        )
    argv = [
        "vllm",
        "serve",
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served_name or model,
        "--max-model-len",
        str(max_context),
        *QWENFIX_FLAGS,
        "--gpu-memory-utilization",
        "0.92",
    ]
    env: dict[str, str] = {}
    if large and model.endswith("-FP8"):
        # The FP8 weights' 128-wide blocks do not split over 8-way tensor parallelism:
        # the recipe is data parallelism across experts.
        argv += ["--data-parallel-size", str(gpus), "--enable-expert-parallel"]
        env["VLLM_USE_DEEP_GEMM"] = "1"
    elif gpus > 1:
        argv += ["--tensor-parallel-size", str(gpus), "--enable-expert-parallel"]
    if max_context >= NATIVE_CONTEXT:
        argv += ["--kv-cache-dtype", "fp8"]  # halves the KV cache: 256K fits beside weights
    if max_context > NATIVE_CONTEXT:
        factor = max_context / NATIVE_CONTEXT
        argv += [
            "--hf-overrides",
            json.dumps(
                {
                    "rope_scaling": {
                        "rope_type": "yarn",
                        "factor": factor,
                        "original_max_position_embeddings": NATIVE_CONTEXT,
                    },
                    "max_position_embeddings": max_context,
                },
                separators=(",", ":"),
            ),
        ]
        env["VLLM_ALLOW_LONG_MAX_MODEL_LEN"] = "1"
    return ServeCommand(argv=argv, env=env)


def cpu_command(
    model_dir: str,
    *,
    python: str,
    port: int,
    max_context: int = 8192,
    served_name: str = "tiny",
    parser: bool = True,
    chat_template: str | None = None,
    kv_cache_gb: int = 1,
) -> ServeCommand:
    """vLLM's CPU build serving a local model directory with random weights (`--load-format
    dummy`): the test server of `make test-vllm`, with production's flags (the parser's
    left out when `parser` is false, to check what qwenfix says of such a server)."""
    flags = QWENFIX_FLAGS if parser else [f for f in QWENFIX_FLAGS if f not in PARSER_FLAGS]
    argv = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        served_name,
        "--load-format",
        "dummy",
        "--max-model-len",
        str(max_context),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]
    if chat_template:
        argv += ["--chat-template", chat_template]
    return ServeCommand(argv=argv, env={"VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb)})
