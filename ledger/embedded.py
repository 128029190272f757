"""The embedded ledger: one SQLite file in the state dir, the default backend.

Only a ledger made with `create=True` (`p2e ledger init`) makes the file, and only where no
file exists; an existing file is never given a new schema. Opening checks that the file is
a p2e ledger (its SQLite application id and schema version, or the tables of a ledger made
before files were stamped), so an emptied, truncated or foreign file is refused instead of
becoming a new, empty ledger. The file is opened at the first command: a worker starts
without one, and its ledger tools report the missing ledger.

Every command is one `BEGIN IMMEDIATE` transaction, so a failed command writes nothing and
concurrent commands (threads or processes) are serialized. Money is stored as integer
cents. Every wallet opening and transfer appends a row to `journal`, whose hash covers the
row and the previous row's hash; triggers refuse UPDATE and DELETE on it. `verify` runs
SQLite's integrity check, recomputes the chain, and checks every table the API reads
(receipts, balances, opening times) against a replay of the journal; the hashing and the
replay are journal.py's, shared with the PostgreSQL backend.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from p2engine.ledger.errors import (
    InsufficientFunds,
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
    entry_of,
    from_cents,
    receipt_of,
    wallet_of,
)
from p2engine.ledger.journal import cents as _cents
from p2engine.ledger.journal import row_hash as row_hash
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
BUSY_TIMEOUT_MS = 10_000
# Stamped in the SQLite header: "P2E" and the schema version this code reads and writes.
APPLICATION_ID = 0x503245
SCHEMA_VERSION = 1
# SQLite failures that can pass by themselves (a lock held past the busy timeout, I/O
# trouble, a full disk), so a retry may succeed; anything else it says about the file (a
# corrupt page, a table gone, text that is not UTF-8) stays until a person repairs it.
TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_PROTOCOL,
    }
)

SCHEMA = """
CREATE TABLE wallets (
    agent TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    opened_at TEXT NOT NULL
);
CREATE TABLE transfers (
    transfer_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payer_balance INTEGER NOT NULL,
    payee_balance INTEGER NOT NULL
);
CREATE INDEX transfers_payer ON transfers (payer, seq);
CREATE INDEX transfers_payee ON transfers (payee, seq);
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    transfer_id TEXT,
    payer TEXT,
    payee TEXT NOT NULL,
    amount INTEGER NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""
STAMP = f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
TRIGGERS = {"journal_no_update", "journal_no_delete"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class EmbeddedLedger:
    """The ledger in the SQLite file at `path`. With `create` (the default, for programs and
    tests that build a ledger of their own) the first command makes the file where none
    exists; `open_ledger` asks for that only for `p2e ledger init`."""

    name = "embedded"

    def __init__(
        self, path: Path, max_transfer: Decimal | None = None, *, create: bool = True
    ) -> None:
        self.path = path
        self.max_transfer = max_transfer
        self.create = create
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # --- the file -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():
            if not self.create:
                raise LedgerStorageError(
                    f"no ledger at {self.path}; create it with `p2e ledger init`"
                )
            self._make()
        # mode=rw: SQLite never creates the file, even if it vanished since the check.
        uri = f"{self.path.absolute().as_uri()}?mode=rw"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._check_file(db)  # before anything writes, WAL mode included
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            db.close()
            raise
        return db

    def _make(self) -> None:
        """Build the schema in a private file and link it to the ledger's name: no process
        ever opens a half-made ledger, an interrupted init leaves no file behind, and of two
        inits at once the first link wins and the other opens that ledger."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(handle)
        draft = Path(name)
        try:
            with closing(sqlite3.connect(draft)) as db:
                db.executescript(SCHEMA + STAMP)
            with suppress(FileExistsError):
                os.link(draft, self.path)
        finally:
            draft.unlink()

    def _check_file(self, db: sqlite3.Connection) -> None:
        """Refuse a file that is not a p2e ledger of this schema; stamp a ledger made before
        files were stamped, recognised by its tables."""
        tables = _tables(db)
        if not tables:
            raise LedgerStorageError(
                f"the ledger file {self.path} is empty; restore it from a backup"
                " (`p2e ledger init` creates a ledger only where no file exists)"
            )
        (application_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if application_id == APPLICATION_ID and version != SCHEMA_VERSION:
            raise LedgerStorageError(
                f"{self.path} is a ledger of schema version {version};"
                f" this p2e reads version {SCHEMA_VERSION}"
            )
        if (application_id, version) not in ((APPLICATION_ID, SCHEMA_VERSION), (0, 0)):
            raise LedgerStorageError(
                f"{self.path} is not a p2e ledger (SQLite application id {application_id:#x})"
            )
        if problem := _shape_problem(tables):
            raise LedgerStorageError(f"{self.path} is not a p2e ledger ({problem})")
        if application_id == 0:
            db.executescript(f"BEGIN IMMEDIATE; {STAMP} COMMIT;")

    def _failure(self, exc: sqlite3.DatabaseError) -> LedgerError:
        if _damaged(exc):
            return LedgerStorageError(f"ledger {self.path} is unreadable: {exc}")
        return LedgerUnavailable(f"ledger {self.path}: {exc}")

    # --- plumbing -------------------------------------------------------------------------

    async def _run(self, command: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, command)

    def _locked(self, command: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._open()
                return command(self._db)
            except sqlite3.ProgrammingError:
                raise  # a bug of ours (a closed connection, a bad statement): keep the story
            except sqlite3.DatabaseError as exc:
                raise self._failure(exc) from exc
            except OSError as exc:  # making the file: no directory, no permission
                raise LedgerUnavailable(f"cannot create the ledger at {self.path}: {exc}") from exc

    def _write(
        self, command: Callable[[sqlite3.Connection], T]
    ) -> Callable[[sqlite3.Connection], T]:
        """Wrap a command in one IMMEDIATE transaction: all of it or nothing."""

        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = command(db)
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on some errors
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return transaction

    @staticmethod
    def _append(
        db: sqlite3.Connection,
        at: str,
        kind: EntryKind,
        transfer_id: str | None,
        payer: str | None,
        payee: str,
        cents: int,
        reason: str,
        reference: str,
    ) -> int:
        last = db.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        fields = [seq, at, kind, transfer_id, payer, payee, cents, reason, reference]
        db.execute(
            "INSERT INTO journal (seq, at, kind, transfer_id, payer, payee, amount, reason,"
            " reference, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, prev, row_hash(prev, fields)),
        )
        return int(seq)

    # --- commands -------------------------------------------------------------------------

    async def open_wallet(self, agent: str, initial: Decimal) -> tuple[Wallet, bool]:
        initial = parse_balance(initial)

        def command(db: sqlite3.Connection) -> tuple[Wallet, bool]:
            row = db.execute(
                "SELECT agent, balance, opened_at FROM wallets WHERE agent = ?", (agent,)
            ).fetchone()
            if row:
                return wallet_of(row), False
            at = _now()
            db.execute(
                "INSERT INTO wallets (agent, balance, opened_at) VALUES (?, ?, ?)",
                (agent, _cents(initial), at),
            )
            self._append(db, at, "open", None, None, agent, _cents(initial), "", "")
            return Wallet(agent=agent, balance=initial, opened_at=datetime.fromisoformat(at)), True

        return await self._run(self._write(command))

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
        cents = _cents(amount)

        def command(db: sqlite3.Connection) -> Receipt:
            existing = _receipt_row(db, transfer_id)
            if existing is not None:
                return existing.answer_repeat(payer, payee, amount, reason)
            balances = dict(
                db.execute(
                    "SELECT agent, balance FROM wallets WHERE agent IN (?, ?)", (payer, payee)
                ).fetchall()
            )
            for agent in (payer, payee):
                if agent not in balances:
                    raise no_wallet(agent)
            if balances[payer] < cents:
                raise InsufficientFunds(
                    f"{payer} has {from_cents(balances[payer]):.2f}, less than {amount:.2f}"
                )
            payer_after, payee_after = balances[payer] - cents, balances[payee] + cents
            db.execute("UPDATE wallets SET balance = ? WHERE agent = ?", (payer_after, payer))
            db.execute("UPDATE wallets SET balance = ? WHERE agent = ?", (payee_after, payee))
            at = _now()
            seq = self._append(db, at, kind, transfer_id, payer, payee, cents, reason, reference)
            db.execute(
                "INSERT INTO transfers (transfer_id, kind, payer, payee, amount, reason,"
                " reference, at, seq, payer_balance, payee_balance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (transfer_id, kind, payer, payee, cents, reason, reference, at, seq,
                 payer_after, payee_after),
            )  # fmt: skip
            receipt = _receipt_row(db, transfer_id)
            assert receipt is not None
            return receipt

        return await self._run(self._write(command))

    # --- reads ----------------------------------------------------------------------------

    async def balance(self, agent: str) -> Decimal:
        def read(db: sqlite3.Connection) -> Decimal:
            row = db.execute("SELECT balance FROM wallets WHERE agent = ?", (agent,)).fetchone()
            if row is None:
                raise no_wallet(agent)
            return from_cents(row[0])

        return await self._run(read)

    async def get_transfer(self, transfer_id: str) -> Receipt | None:
        return await self._run(lambda db: _receipt_row(db, transfer_id))

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        def read(db: sqlite3.Connection) -> list[Receipt]:
            if db.execute("SELECT 1 FROM wallets WHERE agent = ?", (agent,)).fetchone() is None:
                raise no_wallet(agent)
            rows = db.execute(
                f"SELECT {RECEIPT_COLUMNS} FROM transfers WHERE payer = ? OR payee = ?"
                " ORDER BY seq DESC LIMIT ?",
                (agent, agent, limit),
            ).fetchall()
            return [receipt_of(row) for row in rows]

        return await self._run(read)

    async def overview(self) -> list[Wallet]:
        def read(db: sqlite3.Connection) -> list[Wallet]:
            rows = db.execute("SELECT agent, balance, opened_at FROM wallets ORDER BY agent")
            return [wallet_of(row) for row in rows.fetchall()]

        return await self._run(read)

    async def metrics(self) -> LedgerMetrics:
        def read(db: sqlite3.Connection) -> LedgerMetrics:
            wallets, supply = db.execute("SELECT COUNT(*), TOTAL(balance) FROM wallets").fetchone()
            counts = dict(db.execute("SELECT kind, COUNT(*) FROM transfers GROUP BY kind"))
            volume = db.execute("SELECT TOTAL(amount) FROM transfers").fetchone()[0]
            return LedgerMetrics(
                wallets=wallets,
                supply=from_cents(int(supply)),
                volume=from_cents(int(volume)),
                transfers=counts.get("transfer", 0),
                rewards=counts.get("reward", 0),
            )

        return await self._run(read)

    async def audit(
        self, since: datetime | None = None, kind: EntryKind | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        def read(db: sqlite3.Connection) -> list[JournalEntry]:
            clauses, params = [], []
            if since is not None:
                clauses.append("at >= ?")
                params.append(since.astimezone(UTC).isoformat())
            if kind is not None:
                clauses.append("kind = ?")
                params.append(kind)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = db.execute(
                f"SELECT {JOURNAL_COLUMNS} FROM journal{where} ORDER BY seq LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [entry_of(row) for row in rows]

        return await self._run(read)

    async def verify(self) -> VerifyReport:
        return await self._run(_verify)

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _receipt_row(db: sqlite3.Connection, transfer_id: str) -> Receipt | None:
    row = db.execute(
        f"SELECT {RECEIPT_COLUMNS} FROM transfers WHERE transfer_id = ?", (transfer_id,)
    ).fetchone()
    return receipt_of(row) if row else None


def _tables(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """The file's tables (SQLite's own left out) and their columns in order."""
    tables: dict[str, list[str]] = {}
    for table, column in db.execute(
        "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c"
        " WHERE m.type = 'table' AND m.name NOT GLOB 'sqlite_*' ORDER BY m.name, c.cid"
    ):
        tables.setdefault(table, []).append(column)
    return {table: tuple(columns) for table, columns in tables.items()}


@functools.cache
def _ledger_tables() -> dict[str, tuple[str, ...]]:
    """The tables SCHEMA makes, as `_tables` reads them from a file."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        return _tables(db)


def _shape_problem(tables: dict[str, tuple[str, ...]]) -> str | None:
    for table, columns in _ledger_tables().items():
        if table not in tables:
            return f"no table {table}"
        if tables[table] != columns:
            return f"table {table} has the columns {', '.join(tables[table])}"
    return None


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite's error is about the file itself: neither trouble that can pass (see
    TRANSIENT) nor a bug of ours (a closed connection, a bad statement)."""
    # Errors the sqlite3 module raises itself (text that is not UTF-8) carry no code.
    code = getattr(exc, "sqlite_errorcode", None)
    transient = code is not None and code & 0xFF in TRANSIENT
    return not transient and not isinstance(exc, sqlite3.ProgrammingError)


class _Damaged(Exception):
    """SQLite could not read a table; verify reports it as the problem."""


def _rows(
    db: sqlite3.Connection, table: str, sql: str, params: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """The rows of a query on `table`; damage met on the way is _Damaged naming the table,
    while transient trouble raises as it is (to be retried)."""
    try:
        yield from db.execute(sql, params)
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        raise _Damaged(f"table {table}: {exc}") from exc


def _integrity(db: sqlite3.Connection, table: str | None) -> str | None:
    """The first problem `PRAGMA integrity_check` finds in `table` (None: the whole file)."""
    sql = "PRAGMA integrity_check" if table is None else f"PRAGMA integrity_check({table})"
    try:
        found = [line for (text,) in db.execute(sql) for line in text.splitlines()]
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        return str(exc)
    problems = [line for line in found if not line.startswith("*** in database")]
    return None if problems == ["ok"] else problems[0]


def _damage(db: sqlite3.Connection) -> str | None:
    """SQLite's integrity check of the whole file; on a problem, table by table, so that the
    report names the table a damaged page belongs to."""
    whole = _integrity(db, None)
    if whole is None:
        return None
    for table in ("sqlite_schema", *_ledger_tables()):
        if (problem := _integrity(db, table)) is not None:
            return f"table {table}: {problem}"
    return f"the file: {whole}"


def _stored_receipt(db: sqlite3.Connection, transfer_id: str) -> tuple[Any, ...] | None:
    """The `transfers` row of a transfer as stored, for verify to hold to the journal."""
    return next(
        _rows(
            db,
            "transfers",
            f"SELECT {RECEIPT_COLUMNS} FROM transfers WHERE transfer_id = ?",
            (transfer_id,),
        ),
        None,
    )


def _verify(db: sqlite3.Connection) -> VerifyReport:
    """SQLite's integrity check first; then the journal in order (see journal.Replay): each
    row's hash must cover its fields and the previous hash, and the replay of its openings and
    transfers must give every copy the API reads: one `transfers` row per transfer or reward
    with the same fields and the balances right after it, and every wallet's balance and
    opening time."""
    replay = Replay()
    wallet_count = 0

    def broken(problem: str, seq: int | None = None) -> VerifyReport:
        return VerifyReport(
            ok=False, rows=replay.rows, wallets=wallet_count, problem=problem, first_bad_seq=seq
        )

    if (damage := _damage(db)) is not None:
        return broken(damage)
    try:
        (wallet_count,) = next(_rows(db, "wallets", "SELECT COUNT(*) FROM wallets"))
        for row in _rows(db, "journal", f"SELECT {CHAIN_COLUMNS} FROM journal ORDER BY seq"):
            expected = replay.add(row)
            if expected is not None and replay.wants_receipts:
                replay.check_receipt(expected, _stored_receipt(db, expected[0]))
        replay.end_of_journal()
        for agent, balance, opened_at in _rows(
            db, "wallets", "SELECT agent, balance, opened_at FROM wallets ORDER BY agent"
        ):
            replay.check_wallet(agent, balance, opened_at)
        replay.end_of_wallets()
        extra = next(
            _rows(
                db,
                "transfers",
                "SELECT t.transfer_id FROM transfers AS t LEFT JOIN journal AS j"
                " ON j.transfer_id = t.transfer_id"
                " WHERE j.seq IS NULL ORDER BY t.seq LIMIT 1",
            ),
            None,
        )
        if extra is not None:
            return broken(f"transfers row {extra[0]} is not in the journal")
        triggers = {
            name
            for (name,) in _rows(
                db, "sqlite_schema", "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
    except _Damaged as exc:
        return broken(str(exc))
    except Broken as exc:
        return broken(exc.problem, exc.seq)
    if missing := TRIGGERS - triggers:
        return broken(f"append-only trigger {sorted(missing)[0]} is missing")
    return VerifyReport(ok=True, rows=replay.rows, wallets=wallet_count)
