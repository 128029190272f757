"""The PostgreSQL backends of the artifact store and the tool cache, chosen by
`P2E_DATABASE_URL` so that every worker and every CLI on any machine reads the same content.

Artifacts are rows `(ref, data, parent)`: `ref` is the SHA-256 of `data` as in every backend
(so inserting a ref again is a no-op: ON CONFLICT DO NOTHING), and a node's `parent` is kept
beside it so a transcript's chain is one recursive query, not one round trip per step.
`ref` sorts in the C collation, so a prefix lookup is an index range scan. Tool cache rows
expire by time, as the SQLite cache's do. Each backend's tables are versioned
(database/postgres.py); a failure a retry can cure is StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from p2engine.contract.hashing import content_ref
from p2engine.contract.models import ContentNode
from p2engine.database.postgres import open_pool, transient, where
from p2engine.store.base import ArtifactNotFound, StoreUnavailable, check_prefix

ARTIFACTS_VERSION = 1
ARTIFACTS_DDL = [
    """CREATE TABLE artifacts (
        ref TEXT COLLATE "C" PRIMARY KEY,
        data BYTEA NOT NULL,
        parent TEXT COLLATE "C"
    )""",
    "CREATE TABLE store_identity (id TEXT NOT NULL)",
    "INSERT INTO store_identity (id) VALUES (replace(gen_random_uuid()::text, '-', ''))",
]
TOOL_CACHE_VERSION = 1
TOOL_CACHE_DDL = [
    """CREATE TABLE tool_cache (
        key TEXT PRIMARY KEY,
        result_ref TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
]
CHAIN = """
WITH RECURSIVE chain(ref, data, parent, depth) AS (
    SELECT ref, data, parent, 0 FROM artifacts WHERE ref = %s
    UNION ALL
    SELECT a.ref, a.data, a.parent, c.depth + 1
    FROM artifacts a JOIN chain c ON a.ref = c.parent
)
SELECT ref, data, parent FROM chain ORDER BY depth DESC
"""


class _Tables:
    """A lazily opened pool whose first connection makes the component's tables."""

    def __init__(self, url: str, component: str, version: int, ddl: list[str]) -> None:
        self.url = url
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()
        self._schema = (component, version, ddl)

    async def _opened(self) -> AsyncConnectionPool:
        async with self._opening:
            if self._pool is None:
                self._pool = await open_pool(self.url, *self._schema)
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection in a transaction; failures a retry can cure become StoreUnavailable."""
        try:
            pool = await self._opened()
            async with pool.connection() as connection, connection.transaction():
                yield connection
        except (psycopg.Error, PoolTimeout) as exc:
            if transient(exc):
                raise StoreUnavailable(f"{where(self.url)}: {exc}") from exc
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class PostgresArtifactStore:
    """The `ArtifactStore` in a PostgreSQL database (store/base.py)."""

    def __init__(self, url: str) -> None:
        self._tables = _Tables(url, "artifacts", ARTIFACTS_VERSION, ARTIFACTS_DDL)
        self._identity: str | None = None

    @property
    def location(self) -> str:
        return where(self._tables.url)

    async def _put(self, ref: str, data: bytes, parent: str | None = None) -> str:
        async with self._tables.connection() as connection:
            await connection.execute(
                "INSERT INTO artifacts (ref, data, parent) VALUES (%s, %s, %s)"
                " ON CONFLICT (ref) DO NOTHING",
                (ref, data, parent),
            )
        return ref

    async def put_bytes(self, data: bytes) -> str:
        return await self._put(content_ref(data), data)

    async def get_bytes(self, ref: str) -> bytes:
        async with self._tables.connection() as connection:
            cursor = await connection.execute("SELECT data FROM artifacts WHERE ref = %s", (ref,))
            row = await cursor.fetchone()
        if row is None:
            raise ArtifactNotFound(ref)
        return bytes(row[0])

    async def put_text(self, text: str) -> str:
        return await self.put_bytes(text.encode())

    async def get_text(self, ref: str) -> str:
        return (await self.get_bytes(ref)).decode()

    async def put_node(self, node: ContentNode) -> str:
        data = node.canonical()
        return await self._put(content_ref(data), data, node.parent)

    async def get_node(self, ref: str) -> ContentNode:
        return ContentNode.model_validate_json(await self.get_bytes(ref))

    async def chain(self, head: str) -> list[ContentNode]:
        async with self._tables.connection() as connection:
            cursor = await connection.execute(CHAIN, (head,))
            rows = await cursor.fetchall()
        if not rows:
            raise ArtifactNotFound(head)
        if rows[0][2] is not None:  # the oldest found still has a parent: it is missing
            raise ArtifactNotFound(rows[0][2])
        return [ContentNode.model_validate_json(bytes(row[1])) for row in rows]

    async def identity(self) -> str:
        if self._identity is None:
            async with self._tables.connection() as connection:
                cursor = await connection.execute("SELECT id FROM store_identity")
                row = await cursor.fetchone()
            assert row is not None  # made with the tables
            self._identity = str(row[0])
        return self._identity

    async def resolve(self, prefix: str) -> str:
        check_prefix(prefix)
        async with self._tables.connection() as connection:
            cursor = await connection.execute(
                "SELECT ref FROM artifacts WHERE ref >= %s AND ref < %s ORDER BY ref LIMIT 2",
                (prefix, prefix + "g"),  # 'g' sorts after every hex digit
            )
            found = [str(row[0]) for row in await cursor.fetchall()]
        if len(found) != 1:
            raise ArtifactNotFound(f"{prefix} (several refs start so)" if found else prefix)
        return found[0]

    async def close(self) -> None:
        await self._tables.close()


class PostgresToolCache:
    """The `ToolCache` in a PostgreSQL database, shared by every worker (store/base.py)."""

    def __init__(self, url: str) -> None:
        self._tables = _Tables(url, "tool_cache", TOOL_CACHE_VERSION, TOOL_CACHE_DDL)

    async def get(self, key: str) -> str | None:
        async with self._tables.connection() as connection:
            cursor = await connection.execute(
                "SELECT result_ref FROM tool_cache WHERE key = %s AND expires_at > %s",
                (key, time.time()),
            )
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def put(self, key: str, result_ref: str, ttl_s: float) -> None:
        async with self._tables.connection() as connection:
            await connection.execute(
                "INSERT INTO tool_cache (key, result_ref, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (key) DO UPDATE"
                " SET result_ref = EXCLUDED.result_ref, expires_at = EXCLUDED.expires_at",
                (key, result_ref, time.time() + ttl_s),
            )

    async def close(self) -> None:
        await self._tables.close()
