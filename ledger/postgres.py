"""The PostgreSQL ledger: the backend a database URL selects, so that workers on many
machines share one ledger with the embedded ledger's every guarantee.

How each invariant is kept:

- One command, one transaction: a command that fails writes nothing. Serialization
  failures and deadlocks (a race lost, not a wrong command) are retried here a few times,
  then are LedgerUnavailable, which Temporal retries with the same transfer id.
- A transfer id is used once: `ledger_transfers.transfer_id` is the primary key, and the
  command looks the id up again once it holds the journal lock (below), when every earlier
  command has committed; the same details get the original receipt back, other details
  raise DuplicateTransfer, whatever the interleaving of workers.
- Money is integer cents (BIGINT); amounts pass `models.checked_transfer` or
  `models.parse_balance` before any SQL runs. Text PostgreSQL cannot store (a NUL
  character) is refused there too, as InvalidTransfer: a retry could not help.
- No balance goes negative: a transfer locks both wallets (`SELECT ... FOR UPDATE`, in name
  order, so opposing transfers never deadlock) and checks the payer's balance before it
  writes; `CHECK (balance >= 0)` refuses whatever a bug would let through.
- The journal is one hash chain, appended strictly in order: an append holds a
  transaction-scoped advisory lock (JOURNAL_LOCK, taken after any wallet lock), reads the
  last row in a statement of its own (so it sees every append committed before), and writes
  the next `seq` chained to that row's hash (`journal.row_hash`, as the embedded ledger).
  Its time is the server's clock, never before the previous row's, so journal order is time
  order even across workers whose clocks differ.
- The journal is append-only: a statement trigger refuses UPDATE, DELETE and TRUNCATE on
  it, enabled ALWAYS (replica mode does not skip it either).
- `verify` reads one snapshot (REPEATABLE READ, READ ONLY) and holds every table the API
  reads to a replay of the journal (`journal.Replay`, shared with the embedded ledger); it
  also reports the append-only trigger missing or disabled.
- The schema is made on first use by `database.postgres.ensure_schema`, as every p2e
  PostgreSQL backend's: in one transaction under an advisory lock, so workers starting at
  once make it once, versioned in `p2e_schema` (component 'ledger'); a database made by a
  newer p2e is refused (LedgerStorageError), never rewritten.
- Failures are told apart by type, never by message: connection trouble, pool timeouts and
  other `psycopg.OperationalError`s are LedgerUnavailable (retryable); anything else the
  server refuses (a table gone, no privilege) is LedgerStorageError, which only a person
  can fix. A URL that cannot be reached fails within CONNECT_TIMEOUT_S, naming the host.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from p2engine.database.postgres import (
    CONNECT_TIMEOUT_S,
    POOL_TIMEOUT_S,
    SchemaTooNew,
    ensure_schema,
    transient,
    where,
)
from p2engine.ledger.errors import (
    InsufficientFunds,
    InvalidTransfer,
    LedgerError,
    LedgerStorageError,
    LedgerUnavailable,
    no_wallet,
)
from p2engine.ledger.journal import (
    CHAIN_COLUMNS,
    GENESIS,
    JOURNAL_COLUMNS,
    RECEIPT_COLUMNS,
    Broken,
    Replay,
    cents,
    entry_of,
    from_cents,
    iso,
    moment,
    receipt_of,
    row_hash,
    wallet_of,
)
from p2engine.ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerMetrics,
    Receipt,
    TransferKind,
    VerifyReport,
    Wallet,
    checked_transfer,
    parse_balance,
)

T = TypeVar("T")
Connection = psycopg.AsyncConnection[TupleRow]

COMPONENT = "ledger"
SCHEMA_VERSION = 1
POOL_SIZE = 8
# How long a command waits for a lock (a wallet, the journal) before it is LedgerUnavailable:
# the embedded ledger's busy timeout.
LOCK_TIMEOUT_MS = 10_000
ATTEMPTS = 5
BACKOFF_S = 0.02
# pg_advisory_xact_lock's key for appending to the ledger's journal: "P2ELJ" (schema
# creation takes database.postgres.SCHEMA_LOCK, "P2ES").
JOURNAL_LOCK = 0x5032454C4A
TRIGGER = "ledger_journal_append_only"
NUL_RULE = "PostgreSQL cannot store it"
# Races a retry of the whole transaction wins.
RETRIED = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

# The ledger's tables, made in one transaction by database.postgres.ensure_schema.
SCHEMA = (
    """CREATE TABLE ledger_wallets (
        agent TEXT PRIMARY KEY,
        balance BIGINT NOT NULL CHECK (balance >= 0),
        opened_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE ledger_transfers (
        transfer_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('transfer', 'reward')),
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        reason TEXT NOT NULL,
        reference TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        seq BIGINT NOT NULL UNIQUE,
        payer_balance BIGINT NOT NULL CHECK (payer_balance >= 0),
        payee_balance BIGINT NOT NULL CHECK (payee_balance >= 0)
    )""",
    "CREATE INDEX ledger_transfers_payer ON ledger_transfers (payer, seq)",
    "CREATE INDEX ledger_transfers_payee ON ledger_transfers (payee, seq)",
    """CREATE TABLE ledger_journal (
        seq BIGINT PRIMARY KEY CHECK (seq > 0),
        at TIMESTAMPTZ NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('open', 'transfer', 'reward')),
        transfer_id TEXT UNIQUE,
        payer TEXT,
        payee TEXT NOT NULL,
        amount BIGINT NOT NULL,
        reason TEXT NOT NULL,
        reference TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "CREATE INDEX ledger_journal_at ON ledger_journal (at)",
    """CREATE FUNCTION ledger_journal_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the journal is append-only';
    END
    $$""",
    f"""CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_journal
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_journal_refuse()""",
    f"ALTER TABLE ledger_journal ENABLE ALWAYS TRIGGER {TRIGGER}",
)


def _line(exc: BaseException) -> str:
    """An error's first line: ledger errors are one line, the server's may carry more."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unstorable(*texts: str) -> bool:
    """Whether any text has a NUL character, which PostgreSQL's text cannot hold (SQLite's
    can): such a command is refused before it reaches the server, a read finds nothing."""
    return any("\x00" in text for text in texts)


def _limit(limit: int) -> int | None:
    """A LIMIT as SQLite reads it: a negative one is none at all."""
    return None if limit < 0 else limit


def _qualified(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column}" for column in columns.split(", "))


def _with_text_at(row: Sequence[Any], index: int) -> tuple[Any, ...]:
    """A row with its timestamp at `index` as the ISO text the journal hashes."""
    return (*row[:index], iso(row[index]), *row[index + 1 :])


async def _configure(connection: Connection) -> None:
    """Every connection: a lock waited for too long is an error (LedgerUnavailable), never
    a hang."""
    await connection.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


@dataclass(frozen=True)
class _Next:
    """Where the next journal row goes: its seq, the hash it chains to, and its time."""

    seq: int
    prev: str
    at: datetime


class PostgresLedger:
    """The ledger in the PostgreSQL database at `url`; the connection pool opens at the first
    command (making the schema if the database has none) and closes in `close`."""

    name = "postgres"

    def __init__(self, url: str, max_transfer: Decimal | None = None) -> None:
        self.url = url
        self.max_transfer = max_transfer
        self.where = where(url)
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._opening = asyncio.Lock()

    # --- the database ---------------------------------------------------------------------

    async def _ready(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await self._open()
        return self._pool

    async def _open(self) -> AsyncConnectionPool[Connection]:
        """Connect once directly, with a timeout (a pool would keep retrying in the
        background), make or check the schema, then open the pool."""
        try:
            options: dict[str, Any] = {"autocommit": True}
            if "connect_timeout" not in conninfo_to_dict(self.url):
                options["connect_timeout"] = CONNECT_TIMEOUT_S
            first = await psycopg.AsyncConnection.connect(self.url, **options)
        except psycopg.Error as exc:
            raise LedgerUnavailable(
                f"cannot reach the ledger database at {self.where}: {_line(exc)}"
            ) from exc
        try:
            async with first:
                await _configure(first)
                await ensure_schema(first, COMPONENT, SCHEMA_VERSION, SCHEMA)
            pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                self.url,
                kwargs=options,
                min_size=1,
                max_size=POOL_SIZE,
                open=False,
                configure=_configure,
                check=AsyncConnectionPool.check_connection,
                timeout=POOL_TIMEOUT_S,
                name="p2e-ledger",
            )
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except BaseException:
                await pool.close()
                raise
        except SchemaTooNew as exc:
            raise LedgerStorageError(f"ledger database {self.where}: {exc}") from exc
        except psycopg.Error as exc:
            if (failure := self._failure(exc)) is None:
                raise
            raise failure from exc
        return pool

    def _failure(self, exc: psycopg.Error) -> LedgerError | None:
        """A psycopg error as the ledger error it is, by its type: the server not reached or
        not answering in time can pass; anything else the server refuses cannot. None: an
        error psycopg raised itself (a bad statement, wrong parameters), a bug of ours."""
        if transient(exc) or isinstance(exc, psycopg.InterfaceError):
            return LedgerUnavailable(f"ledger database {self.where}: {_line(exc)}")
        if isinstance(exc, psycopg.DatabaseError) and exc.sqlstate is not None:
            return LedgerStorageError(f"ledger database {self.where}: {_line(exc)}")
        return None

    async def _run(
        self, command: Callable[[Connection], Awaitable[T]], snapshot: bool = False
    ) -> T:
        """Run `command` in one transaction (with `snapshot`, a read-only one that sees one
        moment throughout), retrying a lost race a few times."""
        pool = await self._ready()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with pool.connection() as connection, connection.transaction():
                    if snapshot:
                        await connection.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                        )
                    return await command(connection)
            except RETRIED as exc:
                if attempt == ATTEMPTS:
                    raise LedgerUnavailable(
                        f"ledger database {self.where}: still contended after {ATTEMPTS}"
                        f" tries ({_line(exc)})"
                    ) from exc
                await asyncio.sleep(random.uniform(0, BACKOFF_S * attempt))
            except psycopg.Error as exc:
                if (failure := self._failure(exc)) is None:
                    raise
                raise failure from exc
        raise AssertionError("unreachable")

    # --- commands -------------------------------------------------------------------------

    async def open_wallet(self, agent: str, initial: Decimal) -> tuple[Wallet, bool]:
        initial = parse_balance(initial)
        if _unstorable(agent):
            raise InvalidTransfer(f"wallet name {agent!r} has a NUL character: {NUL_RULE}")

        async def command(connection: Connection) -> tuple[Wallet, bool]:
            if (existing := await _wallet_row(connection, agent)) is not None:
                return existing, False
            place = await _lock_journal(connection)
            if (existing := await _wallet_row(connection, agent)) is not None:
                return existing, False  # opened while this command waited for the lock
            await connection.execute(
                "INSERT INTO ledger_wallets (agent, balance, opened_at) VALUES (%s, %s, %s)",
                (agent, cents(initial), place.at),
            )
            await _append(connection, place, "open", None, None, agent, cents(initial), "", "")
            return Wallet(agent=agent, balance=initial, opened_at=moment(place.at)), True

        return await self._run(command)

    async def transfer(
        self,
        transfer_id: str,
        payer: str,
        payee: str,
        amount: Decimal,
        reason: str = "",
        reference: str = "",
        kind: TransferKind = "transfer",
    ) -> Receipt:
        amount = checked_transfer(transfer_id, payer, payee, amount, self.max_transfer)
        moved = cents(amount)
        if _unstorable(transfer_id, payer, payee, reason, reference):
            raise InvalidTransfer(f"transfer {transfer_id!r} has a NUL character: {NUL_RULE}")

        async def command(connection: Connection) -> Receipt:
            if (done := await _receipt_row(connection, transfer_id)) is not None:
                return done.answer_repeat(payer, payee, amount, reason)
            cursor = await connection.execute(
                "SELECT agent, balance FROM ledger_wallets WHERE agent = ANY(%s)"
                " ORDER BY agent FOR UPDATE",
                ([payer, payee],),
            )
            balances: dict[str, int] = dict(await cursor.fetchall())
            place = await _lock_journal(connection)
            if (done := await _receipt_row(connection, transfer_id)) is not None:
                # made while this command waited for the locks
                return done.answer_repeat(payer, payee, amount, reason)
            for agent in (payer, payee):
                if agent not in balances:
                    raise no_wallet(agent)
            if balances[payer] < moved:
                raise InsufficientFunds(
                    f"{payer} has {from_cents(balances[payer]):.2f}, less than {amount:.2f}"
                )
            payer_after, payee_after = balances[payer] - moved, balances[payee] + moved
            for agent, balance in ((payer, payer_after), (payee, payee_after)):
                await connection.execute(
                    "UPDATE ledger_wallets SET balance = %s WHERE agent = %s", (balance, agent)
                )
            await _append(
                connection, place, kind, transfer_id, payer, payee, moved, reason, reference
            )
            cursor = await connection.execute(
                "INSERT INTO ledger_transfers (transfer_id, kind, payer, payee, amount, reason,"
                " reference, at, seq, payer_balance, payee_balance)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {RECEIPT_COLUMNS}",
                (transfer_id, kind, payer, payee, moved, reason, reference, place.at,
                 place.seq, payer_after, payee_after),
            )  # fmt: skip
            row = await cursor.fetchone()
            assert row is not None
            return receipt_of(row)

        return await self._run(command)

    # --- reads ----------------------------------------------------------------------------

    async def balance(self, agent: str) -> Decimal:
        if _unstorable(agent):
            raise no_wallet(agent)  # no wallet can have the name

        async def read(connection: Connection) -> Decimal:
            wallet = await _wallet_row(connection, agent)
            if wallet is None:
                raise no_wallet(agent)
            return wallet.balance

        return await self._run(read)

    async def get_transfer(self, transfer_id: str) -> Receipt | None:
        if _unstorable(transfer_id):
            return None  # no transfer can have the id
        return await self._run(lambda connection: _receipt_row(connection, transfer_id))

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        if _unstorable(agent):
            raise no_wallet(agent)

        async def read(connection: Connection) -> list[Receipt]:
            if await _wallet_row(connection, agent) is None:
                raise no_wallet(agent)
            cursor = await connection.execute(
                f"SELECT {RECEIPT_COLUMNS} FROM ledger_transfers WHERE payer = %s OR payee = %s"
                " ORDER BY seq DESC LIMIT %s",
                (agent, agent, _limit(limit)),
            )
            return [receipt_of(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def overview(self) -> list[Wallet]:
        async def read(connection: Connection) -> list[Wallet]:
            cursor = await connection.execute(
                "SELECT agent, balance, opened_at FROM ledger_wallets ORDER BY agent"
            )
            return [wallet_of(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def metrics(self) -> LedgerMetrics:
        async def read(connection: Connection) -> LedgerMetrics:
            cursor = await connection.execute(
                "SELECT (SELECT COUNT(*) FROM ledger_wallets),"
                " (SELECT COALESCE(SUM(balance), 0) FROM ledger_wallets),"
                " (SELECT COALESCE(SUM(amount), 0) FROM ledger_transfers),"
                " (SELECT COUNT(*) FROM ledger_transfers WHERE kind = 'transfer'),"
                " (SELECT COUNT(*) FROM ledger_transfers WHERE kind = 'reward')"
            )
            row = await cursor.fetchone()
            assert row is not None
            wallets, supply, volume, transfers, rewards = row
            return LedgerMetrics(
                wallets=wallets,
                supply=from_cents(int(supply)),
                volume=from_cents(int(volume)),
                transfers=transfers,
                rewards=rewards,
            )

        return await self._run(read)

    async def audit(
        self, since: datetime | None = None, kind: EntryKind | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("at >= %s")
            params.append(since.astimezone(UTC))
        if kind is not None:
            clauses.append("kind = %s")
            params.append(kind)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""

        async def read(connection: Connection) -> list[JournalEntry]:
            cursor = await connection.execute(
                f"SELECT {JOURNAL_COLUMNS} FROM ledger_journal{where} ORDER BY seq LIMIT %s",
                (*params, _limit(limit)),
            )
            return [entry_of(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def verify(self) -> VerifyReport:
        return await self._run(_verify, snapshot=True)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def _wallet_row(connection: Connection, agent: str) -> Wallet | None:
    cursor = await connection.execute(
        "SELECT agent, balance, opened_at FROM ledger_wallets WHERE agent = %s", (agent,)
    )
    row = await cursor.fetchone()
    return wallet_of(row) if row else None


async def _receipt_row(connection: Connection, transfer_id: str) -> Receipt | None:
    cursor = await connection.execute(
        f"SELECT {RECEIPT_COLUMNS} FROM ledger_transfers WHERE transfer_id = %s", (transfer_id,)
    )
    row = await cursor.fetchone()
    return receipt_of(row) if row else None


async def _lock_journal(connection: Connection) -> _Next:
    """Take the journal lock (held to the end of the transaction) and say where the next row
    goes. The last row is read by a statement after the lock's, so it is the last committed."""
    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (JOURNAL_LOCK,))
    cursor = await connection.execute(
        "SELECT clock_timestamp(), last.seq, last.hash, last.at FROM (SELECT 1) AS here"
        " LEFT JOIN (SELECT seq, hash, at FROM ledger_journal ORDER BY seq DESC LIMIT 1)"
        " AS last ON true"
    )
    row = await cursor.fetchone()
    assert row is not None
    now, seq, digest, at = row
    if seq is None:
        return _Next(1, GENESIS, now)
    return _Next(seq + 1, digest, max(now, at))


async def _append(
    connection: Connection,
    place: _Next,
    kind: EntryKind,
    transfer_id: str | None,
    payer: str | None,
    payee: str,
    amount: int,
    reason: str,
    reference: str,
) -> None:
    """Write the journal row at `place` (whose lock this transaction holds)."""
    fields = [place.seq, iso(place.at), kind, transfer_id, payer, payee, amount, reason, reference]
    await connection.execute(
        "INSERT INTO ledger_journal (seq, at, kind, transfer_id, payer, payee, amount, reason,"
        " reference, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (place.seq, place.at, kind, transfer_id, payer, payee, amount, reason, reference,
         place.prev, row_hash(place.prev, fields)),
    )  # fmt: skip


async def _verify(connection: Connection) -> VerifyReport:
    """The journal in order (see journal.Replay): each row's hash must cover its fields and
    the previous hash, and the replay of its openings and transfers must give every copy the
    API reads; then no receipt outside the journal, and the append-only trigger in place."""
    replay = Replay()
    wallet_count = 0
    try:
        cursor = await connection.execute("SELECT COUNT(*) FROM ledger_wallets")
        (wallet_count,) = await cursor.fetchone() or (0,)
        chain_width = len(CHAIN_COLUMNS.split(", "))
        async with connection.cursor(name="p2e_ledger_verify") as journal:
            journal.itersize = 1000
            await journal.execute(
                f"SELECT {_qualified(CHAIN_COLUMNS, 'j')}, {_qualified(RECEIPT_COLUMNS, 't')}"
                " FROM ledger_journal AS j"
                " LEFT JOIN ledger_transfers AS t ON t.transfer_id = j.transfer_id"
                " ORDER BY j.seq"
            )
            async for row in journal:
                chain, stored = row[:chain_width], row[chain_width:]
                expected = replay.add(_with_text_at(chain, 1))
                if expected is not None and replay.wants_receipts:
                    receipt = None if stored[0] is None else _with_text_at(stored, 7)
                    replay.check_receipt(expected, receipt)
        replay.end_of_journal()
        cursor = await connection.execute(
            "SELECT agent, balance, opened_at FROM ledger_wallets ORDER BY agent"
        )
        for agent, balance, opened_at in await cursor.fetchall():
            replay.check_wallet(agent, balance, iso(opened_at))
        replay.end_of_wallets()
        cursor = await connection.execute(
            "SELECT t.transfer_id FROM ledger_transfers AS t LEFT JOIN ledger_journal AS j"
            " ON j.transfer_id = t.transfer_id WHERE j.seq IS NULL ORDER BY t.seq LIMIT 1"
        )
        if (extra := await cursor.fetchone()) is not None:
            raise Broken(f"transfers row {extra[0]} is not in the journal")
        cursor = await connection.execute(
            "SELECT tgenabled::text FROM pg_trigger"
            " WHERE tgrelid = 'ledger_journal'::regclass AND tgname = %s",
            (TRIGGER,),
        )
        trigger = await cursor.fetchone()
        if trigger is None:
            raise Broken(f"append-only trigger {TRIGGER} is missing")
        if trigger[0] != "A":
            raise Broken(f"append-only trigger {TRIGGER} is not always enabled")
    except Broken as exc:
        return VerifyReport(
            ok=False,
            rows=replay.rows,
            wallets=wallet_count,
            problem=exc.problem,
            first_bad_seq=exc.seq,
        )
    return VerifyReport(ok=True, rows=replay.rows, wallets=wallet_count)
