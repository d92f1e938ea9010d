"""Whole-repository context: what the model sees first, rendered once per run."""

from workers.context.build import RepositoryContext, build_repository_context

__all__ = ["RepositoryContext", "build_repository_context"]
