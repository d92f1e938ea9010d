"""Whole-repository context: what the model sees first, rendered once per run."""

from workers.engine.context.build import pack_commit, repository_instructions

__all__ = ["pack_commit", "repository_instructions"]
