"""PostgreSQL plumbing shared by the backends that `P2E_DATABASE_URL` selects.

- A pool opens with a first direct connection that has a timeout, so an unreachable server
  is an error in seconds, never a hang.
- Each backend's tables carry a version in `p2e_schema` (one row per component): created on
  first use under an advisory lock (two workers starting at once make them once), and a
  database whose version is newer than this code's is refused, never rewritten.
- `transient` says which failures a retry can cure: the connection, the server shutting
  down, a serialization failure or a deadlock; a constraint or a syntax error cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from p2engine.contract.errors import P2eError

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10
# Serialises schema creation across processes: pg_advisory_xact_lock's key for p2e.
SCHEMA_LOCK = 0x50324553

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS p2e_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)
"""


class SchemaTooNew(P2eError):
    """The database holds a component's tables from a newer p2e than this one."""

    def __init__(self, component: str, found: int, known: int) -> None:
        super().__init__(
            f"the database's {component} schema is version {found}, made by a newer p2e "
            f"(this one knows {known}); upgrade p2e"
        )


def where(url: str) -> str:
    """The URL without its password, for messages: `postgresql://user@host:port/db`."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unreadable database URL"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', 'localhost')}{port}/{parts.get('dbname', '')}"


def check_connection(url: str) -> None:
    """ConnectionError naming the database (without its password) unless it answers."""
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        raise ConnectionError(f"{where(url)}: {exc}") from exc


async def open_pool(
    url: str, component: str, version: int, ddl: Sequence[str], max_size: int = 4
) -> AsyncConnectionPool:
    """An open pool on a database that holds `component`'s tables (made if missing). The
    first connection is made here, directly, so an unreachable server fails at once (the
    pool would keep trying in the background until its timeout)."""
    first = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        await ensure_schema(first, component, version, ddl)
    finally:
        await first.close()
    pool = AsyncConnectionPool(
        url,
        min_size=0,
        max_size=max_size,
        timeout=POOL_TIMEOUT_S,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
        open=False,
    )
    await pool.open()
    return pool


async def ensure_schema(
    connection: psycopg.AsyncConnection[Any],
    component: str,
    version: int,
    ddl: Sequence[str],
) -> None:
    """Create `component`'s tables (its `ddl`) and record `version`, once; refuse a newer
    version with SchemaTooNew. Runs in one transaction of its own."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await connection.execute(SCHEMA_TABLE)
        cursor = await connection.execute(
            "SELECT version FROM p2e_schema WHERE component = %s", (component,)
        )
        row = await cursor.fetchone()
        if row is not None:
            found = int(row[0])
            if found > version:
                raise SchemaTooNew(component, found, version)
            return
        for statement in ddl:
            await connection.execute(statement)
        await connection.execute(
            "INSERT INTO p2e_schema (component, version) VALUES (%s, %s)", (component, version)
        )


def transient(exc: BaseException) -> bool:
    """Whether a retry may succeed: the connection failed or was lost, the pool had none to
    give in time, the server is going away, or the transaction lost a race."""
    return isinstance(
        exc,
        (
            psycopg.OperationalError,
            PoolTimeout,
            pg_errors.SerializationFailure,
            pg_errors.DeadlockDetected,
            pg_errors.AdminShutdown,
            pg_errors.CannotConnectNow,
        ),
    )
