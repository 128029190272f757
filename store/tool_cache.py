"""The tool cache: results of side-effect-free tools, keyed by tool and argument hash.

It lives outside the workflow (a SQLite file in the state dir) so a hit costs no model
step and no history; entries expire after the tool's `cache_ttl`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path


def cache_key(tool_name: str, canonical_arguments: str) -> str:
    digest = hashlib.sha256(canonical_arguments.encode()).hexdigest()
    return f"{tool_name}:{digest}"


class ToolCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost entry only costs a re-run
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tool_cache"
            " (key TEXT PRIMARY KEY, result_ref TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    def get(self, key: str) -> str | None:
        row = self._db.execute(
            "SELECT result_ref FROM tool_cache WHERE key = ? AND expires_at > ?",
            (key, time.time()),
        ).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, result_ref: str, ttl_s: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tool_cache (key, result_ref, expires_at) VALUES (?, ?, ?)",
            (key, result_ref, time.time() + ttl_s),
        )
