"""The embedded ledger: one SQLite file in the state dir, the default backend.

Every command is one `BEGIN IMMEDIATE` transaction, so a failed command writes nothing and
concurrent commands (threads or processes) are serialized. Money is stored as integer
cents. Every wallet opening and transfer appends a row to `journal`, whose hash covers the
row and the previous row's hash; triggers refuse UPDATE and DELETE on it, and `verify`
recomputes the chain and every balance from the journal alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import (
    InsufficientFunds,
    InvalidAmount,
    LedgerUnavailable,
    UnknownWallet,
)
from ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerMetrics,
    Receipt,
    TransferKind,
    VerifyReport,
    Wallet,
    checked_transfer,
)

T = TypeVar("T")
GENESIS = "0" * 64
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS wallets (
    agent TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers (
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
CREATE INDEX IF NOT EXISTS transfers_payer ON transfers (payer, seq);
CREATE INDEX IF NOT EXISTS transfers_payee ON transfers (payee, seq);
CREATE TABLE IF NOT EXISTS journal (
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
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""
TRIGGERS = {"journal_no_update", "journal_no_delete"}
JOURNAL_COLUMNS = "seq, at, kind, transfer_id, payer, payee, amount, reason, reference, hash"


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def row_hash(prev_hash: str, fields: list[Any]) -> str:
    """The hash of one journal row: its fields in order, chained to the previous hash."""
    canonical = json.dumps([prev_hash, *fields], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class EmbeddedLedger:
    name = "embedded"

    def __init__(self, path: Path, max_transfer: Decimal | None = None) -> None:
        self.path = path
        self.max_transfer = max_transfer
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerUnavailable(f"cannot open the ledger at {path}: {exc}") from exc

    # --- plumbing -------------------------------------------------------------------------

    async def _run(self, command: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, command)

    def _locked(self, command: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return command(self._db)
            except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full
                raise LedgerUnavailable(f"ledger {self.path}: {exc}") from exc

    def _write(
        self, command: Callable[[sqlite3.Connection], T]
    ) -> Callable[[sqlite3.Connection], T]:
        """Wrap a command in one IMMEDIATE transaction: all of it or nothing."""

        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = command(db)
            except BaseException:
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
        if initial < 0 or initial != initial.quantize(Decimal("0.01")):
            raise InvalidAmount(f"initial balance must be >= 0 with 2 decimals, not {initial}")

        def command(db: sqlite3.Connection) -> tuple[Wallet, bool]:
            row = db.execute(
                "SELECT agent, balance, opened_at FROM wallets WHERE agent = ?", (agent,)
            ).fetchone()
            if row:
                return _wallet(row), False
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
                    raise UnknownWallet(f"no wallet for {agent}; open it with `p2e ledger init`")
            if balances[payer] < cents:
                raise InsufficientFunds(
                    f"{payer} has {_money(balances[payer]):.2f}, less than {amount:.2f}"
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
                raise UnknownWallet(f"no wallet for {agent}; open it with `p2e ledger init`")
            return _money(row[0])

        return await self._run(read)

    async def get_transfer(self, transfer_id: str) -> Receipt | None:
        return await self._run(lambda db: _receipt_row(db, transfer_id))

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        def read(db: sqlite3.Connection) -> list[Receipt]:
            if db.execute("SELECT 1 FROM wallets WHERE agent = ?", (agent,)).fetchone() is None:
                raise UnknownWallet(f"no wallet for {agent}; open it with `p2e ledger init`")
            rows = db.execute(
                f"SELECT {RECEIPT_COLUMNS} FROM transfers WHERE payer = ? OR payee = ?"
                " ORDER BY seq DESC LIMIT ?",
                (agent, agent, limit),
            ).fetchall()
            return [_receipt(row) for row in rows]

        return await self._run(read)

    async def overview(self) -> list[Wallet]:
        def read(db: sqlite3.Connection) -> list[Wallet]:
            rows = db.execute("SELECT agent, balance, opened_at FROM wallets ORDER BY agent")
            return [_wallet(row) for row in rows.fetchall()]

        return await self._run(read)

    async def metrics(self) -> LedgerMetrics:
        def read(db: sqlite3.Connection) -> LedgerMetrics:
            wallets, supply = db.execute("SELECT COUNT(*), TOTAL(balance) FROM wallets").fetchone()
            counts = dict(db.execute("SELECT kind, COUNT(*) FROM transfers GROUP BY kind"))
            volume = db.execute("SELECT TOTAL(amount) FROM transfers").fetchone()[0]
            return LedgerMetrics(
                wallets=wallets,
                supply=_money(int(supply)),
                volume=_money(int(volume)),
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
            return [_journal_entry(row) for row in rows]

        return await self._run(read)

    async def verify(self) -> VerifyReport:
        return await self._run(_verify)

    async def close(self) -> None:
        with self._lock:
            self._db.close()


RECEIPT_COLUMNS = (
    "transfer_id, kind, payer, payee, amount, reason, reference, at, seq,"
    " payer_balance, payee_balance"
)


def _receipt(row: tuple[Any, ...]) -> Receipt:
    transfer_id, kind, payer, payee, amount, reason, reference, at, seq, paid, got = row
    return Receipt(
        transfer_id=transfer_id,
        kind=kind,
        payer=payer,
        payee=payee,
        amount=_money(amount),
        reason=reason,
        reference=reference,
        at=datetime.fromisoformat(at),
        seq=seq,
        payer_balance=_money(paid),
        payee_balance=_money(got),
    )


def _receipt_row(db: sqlite3.Connection, transfer_id: str) -> Receipt | None:
    row = db.execute(
        f"SELECT {RECEIPT_COLUMNS} FROM transfers WHERE transfer_id = ?", (transfer_id,)
    ).fetchone()
    return _receipt(row) if row else None


def _wallet(row: tuple[Any, ...]) -> Wallet:
    agent, balance, opened_at = row
    return Wallet(agent=agent, balance=_money(balance), opened_at=datetime.fromisoformat(opened_at))


def _journal_entry(row: tuple[Any, ...]) -> JournalEntry:
    seq, at, kind, transfer_id, payer, payee, amount, reason, reference, digest = row
    return JournalEntry(
        seq=seq,
        at=datetime.fromisoformat(at),
        kind=kind,
        transfer_id=transfer_id,
        payer=payer,
        payee=payee,
        amount=_money(amount),
        reason=reason,
        reference=reference,
        hash=digest,
    )


def _verify(db: sqlite3.Connection) -> VerifyReport:
    """Walk the journal in order: each row's hash must cover its fields and the previous
    hash; replaying its openings and transfers must give every wallet's balance."""
    balances: dict[str, int] = {}
    prev, rows = GENESIS, 0
    wallet_count = db.execute("SELECT COUNT(*) FROM wallets").fetchone()[0]

    def broken(problem: str, seq: int | None = None) -> VerifyReport:
        return VerifyReport(
            ok=False, rows=rows, wallets=wallet_count, problem=problem, first_bad_seq=seq
        )

    cursor = db.execute(
        "SELECT seq, at, kind, transfer_id, payer, payee, amount, reason, reference,"
        " prev_hash, hash FROM journal ORDER BY seq"
    )
    for row in cursor:
        rows += 1
        *fields, stored_prev, stored_hash = row
        seq, kind, payer, payee, cents = fields[0], fields[2], fields[4], fields[5], fields[6]
        if seq != rows:
            return broken(f"journal row {seq}: expected row {rows} (a row is missing)", seq)
        if stored_prev != prev or row_hash(prev, fields) != stored_hash:
            return broken(f"journal row {seq}: its hash does not match its contents", seq)
        prev = stored_hash
        if kind == "open":
            balances[payee] = cents
        else:
            balances[payer] = balances.get(payer, 0) - cents
            balances[payee] = balances.get(payee, 0) + cents
    for agent, cents in db.execute("SELECT agent, balance FROM wallets ORDER BY agent"):
        expected = balances.pop(agent, None)
        if expected != cents:
            shown = "no opening" if expected is None else f"{_money(expected):.2f}"
            return broken(f"wallet {agent}: balance {_money(cents):.2f}, journal says {shown}")
    if balances:
        return broken(f"wallet {sorted(balances)[0]} is in the journal but not in the wallets")
    triggers = {
        name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    if missing := TRIGGERS - triggers:
        return broken(f"append-only trigger {sorted(missing)[0]} is missing")
    return VerifyReport(ok=True, rows=rows, wallets=wallet_count)
