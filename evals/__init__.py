"""Evaluators that score conversation steps: the registry, the rule kinds, configured ones.

Importing the package registers the built-in evaluators."""

from p2engine.evals import rules  # noqa: F401
