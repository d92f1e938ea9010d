"""Test doubles at the edges of qwenfix (the sandbox, the model); never imported by the
product."""
