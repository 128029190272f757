"""Where content and tool results live: the artifact store and the tool cache, each a
Protocol (store/base.py) with a local backend (the embedded default, in the state dir) and
a PostgreSQL one (`P2E_DATABASE_URL`), loaded only when chosen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from p2engine.store.base import ArtifactStore, StoreUnavailable, ToolCache


class StoreSettings(Protocol):
    """What choosing a backend reads (runtime.settings.Settings has it)."""

    @property
    def state_dir(self) -> Path: ...

    @property
    def database_url(self) -> str | None: ...


def open_store(settings: StoreSettings) -> ArtifactStore:
    """The artifact store the settings choose: the database's, else the state dir's."""
    if settings.database_url:
        from p2engine.store.postgres import PostgresArtifactStore

        return PostgresArtifactStore(settings.database_url)
    from p2engine.store.artifacts import LocalArtifactStore

    return LocalArtifactStore(settings.state_dir / "artifacts")


def open_tool_cache(settings: StoreSettings) -> ToolCache:
    """The tool cache the settings choose: the database's, else the state dir's."""
    if settings.database_url:
        from p2engine.store.postgres import PostgresToolCache

        return PostgresToolCache(settings.database_url)
    from p2engine.store.tool_cache import SqliteToolCache

    return SqliteToolCache(settings.state_dir / "tool-cache.db")


def check_reachable(settings: StoreSettings) -> None:
    """StoreUnavailable, naming the database, unless the settings' database answers (at
    once, or within the connect timeout): so a command refuses before it starts anything.
    The local backends need no check: a missing directory is made on first write."""
    if settings.database_url:
        from p2engine.database.postgres import check_connection

        try:
            check_connection(settings.database_url)
        except ConnectionError as exc:
            raise StoreUnavailable(str(exc)) from exc


@asynccontextmanager
async def store_for(settings: StoreSettings) -> AsyncIterator[ArtifactStore]:
    """The artifact store for the length of a block, closed after it: how a client (the
    CLI, a script) reads content written by workers on any machine sharing the store."""
    store = open_store(settings)
    try:
        yield store
    finally:
        await store.close()
