"""The model side: an OpenAI-compatible client for vLLM and Qwen3-Coder's tool-call format."""
