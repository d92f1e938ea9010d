"""A Qwen3-Coder-shaped model small enough for two CPU cores: `Qwen3MoeForCausalLM` (the
architecture of Qwen3-Coder-30B-A3B) scaled down to two layers and a 128-wide hidden
state, with Qwen3's real tokenizer and the Qwen3-Coder prompt format. vLLM serves it with
`--load-format dummy`: random weights, so its answers mean nothing, but every byte of the
protocol (chat template, tool parser, prefix cache, window) is the real server's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from workers.engine.context.tokens import vendored_tokenizer_json

HERE = Path(__file__).parent
VENDORED = HERE.parents[1] / "workers" / "engine" / "context" / "qwen3_tokenizer"
CONFIG = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "hidden_size": 128,
    "intermediate_size": 256,
    "moe_intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "norm_topk_prob": True,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
    "rope_theta": 10000000.0,
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
GENERATION = {"bos_token_id": 151643, "eos_token_id": [151645, 151643]}


def build(directory: Path) -> Path:
    """The model directory at `directory`, written once; its chat template is
    tests/vllm/chat_template.jinja (passed to the server as `--chat-template`)."""
    if (directory / ".complete").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG, indent=2))
    (directory / "generation_config.json").write_text(json.dumps(GENERATION, indent=2))
    write_tokenizer(directory)
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)  # the server's template is ours, named explicitly
    config_path.write_text(json.dumps(config, indent=2))
    shutil.copy(HERE / "chat_template.jinja", directory / "chat_template.jinja")
    (directory / ".complete").write_text("")
    return directory


def write_tokenizer(directory: Path) -> Path:
    """The tokenizer qwenfix counts with, laid out as a Hugging Face tokenizer directory
    (tokenizer.json, checked, and its tokenizer_config.json) for transformers and vLLM."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.json").write_bytes(vendored_tokenizer_json())
    shutil.copy(VENDORED / "tokenizer_config.json", directory / "tokenizer_config.json")
    return directory
