"""Entry-point plugins: how a third-party package adds tools or evaluators."""

from __future__ import annotations

from importlib.metadata import entry_points

from p2engine.contract.errors import ConfigError


def load_entry_points(group: str, what: str) -> None:
    """Import every entry point of `group` (a module, whose decorators register what it
    adds); one that fails to import is a ConfigError naming it."""
    for entry in entry_points(group=group):
        try:
            entry.load()
        except Exception as exc:  # any import-time failure of someone else's package
            raise ConfigError(
                f"{what} plugin '{entry.name}' ({entry.value}) failed to load: {exc}"
            ) from exc
