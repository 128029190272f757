"""The tool cache's key, and its embedded backend: a SQLite file in the state dir.

The cache lives outside the workflow so a hit costs no model step and no history; entries
expire after the tool's `cache_ttl`. Queries run in a thread, one at a time on the one
connection, so the worker's event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from p2engine.contract.hashing import arguments_digest


def cache_key(tool_name: str, arguments: str) -> str:
    """Same tool and same arguments (after canonicalising the JSON) give the same key."""
    return f"{tool_name}:{arguments_digest(arguments)}"


class SqliteToolCache:
    """The `ToolCache` of one machine (store/base.py)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost entry only costs a re-run
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tool_cache"
            " (key TEXT PRIMARY KEY, result_ref TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    async def get(self, key: str) -> str | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, result_ref: str, ttl_s: float) -> None:
        await asyncio.to_thread(self._put, key, result_ref, ttl_s)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()

    def _get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT result_ref FROM tool_cache WHERE key = ? AND expires_at > ?",
                (key, time.time()),
            ).fetchone()
        return str(row[0]) if row else None

    def _put(self, key: str, result_ref: str, ttl_s: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tool_cache (key, result_ref, expires_at) VALUES (?, ?, ?)",
                (key, result_ref, time.time() + ttl_s),
            )
