"""What the database backends (embedded SQLite, PostgreSQL) share about their tables: money
as integer cents, the row shapes the API returns, how a journal row is hashed into the chain,
and the replay `verify` holds every stored copy to.

Pure: no storage here. Each backend reads its own rows, turns its timestamps into the ISO
text the hashes cover (`iso`), and feeds them to `Replay`, so both chains are hashed and
checked by the same code and a journal means the same on either backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from p2engine.ledger.models import JournalEntry, Receipt, Wallet

GENESIS = "0" * 64
CENT = Decimal("0.01")
RECEIPT_COLUMNS = (
    "transfer_id, kind, payer, payee, amount, reason, reference, at, seq,"
    " payer_balance, payee_balance"
)
RECEIPT_FIELDS = tuple(RECEIPT_COLUMNS.split(", "))
JOURNAL_COLUMNS = "seq, at, kind, transfer_id, payer, payee, amount, reason, reference, hash"
# What verify reads of a journal row: the fields its hash covers, then prev_hash and hash.
CHAIN_COLUMNS = (
    "seq, at, kind, transfer_id, payer, payee, amount, reason, reference, prev_hash, hash"
)
MONEY_FIELDS = {"amount", "balance", "payer_balance", "payee_balance"}


def cents(amount: Decimal) -> int:
    return int(amount * 100)


def from_cents(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(CENT)


def iso(at: datetime) -> str:
    """A timestamp as the journal hashes it: ISO text in UTC, as `datetime.isoformat` writes."""
    return at.astimezone(UTC).isoformat()


def moment(at: str | datetime) -> datetime:
    """A stored timestamp (ISO text, or a timestamp column) as an aware datetime in UTC."""
    return datetime.fromisoformat(at) if isinstance(at, str) else at.astimezone(UTC)


def row_hash(prev_hash: str, fields: list[Any]) -> str:
    """The hash of one journal row: its fields in order, chained to the previous hash."""
    canonical = json.dumps([prev_hash, *fields], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def receipt_of(row: Sequence[Any]) -> Receipt:
    """A `transfers` row read with RECEIPT_COLUMNS."""
    transfer_id, kind, payer, payee, amount, reason, reference, at, seq, paid, got = row
    return Receipt(
        transfer_id=transfer_id,
        kind=kind,
        payer=payer,
        payee=payee,
        amount=from_cents(amount),
        reason=reason,
        reference=reference,
        at=moment(at),
        seq=seq,
        payer_balance=from_cents(paid),
        payee_balance=from_cents(got),
    )


def wallet_of(row: Sequence[Any]) -> Wallet:
    """A `wallets` row read as (agent, balance, opened_at)."""
    agent, balance, opened_at = row
    return Wallet(agent=agent, balance=from_cents(balance), opened_at=moment(opened_at))


def entry_of(row: Sequence[Any]) -> JournalEntry:
    """A `journal` row read with JOURNAL_COLUMNS."""
    seq, at, kind, transfer_id, payer, payee, amount, reason, reference, digest = row
    return JournalEntry(
        seq=seq,
        at=moment(at),
        kind=kind,
        transfer_id=transfer_id,
        payer=payer,
        payee=payee,
        amount=from_cents(amount),
        reason=reason,
        reference=reference,
        hash=digest,
    )


def shown(field: str, value: Any) -> str:
    """A stored value as verify names it: money in units, anything else (or a value of the
    wrong type) as Python shows it."""
    if field in MONEY_FIELDS and type(value) is int:
        return f"{from_cents(value):.2f}"
    return repr(value)


class Broken(Exception):
    """What verify reports: the first problem found, and the journal row it is at (if any)."""

    def __init__(self, problem: str, seq: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.seq = seq


class Replay:
    """The journal read in order, as verify reads it. `add` checks each row's place and hash
    and applies it; the backend then holds its stored copies (receipts, wallets) to what the
    replay says. Problems raise `Broken`. A broken chain is named before a copy that differs:
    the journal is what the copies are held to, so a receipt's problem is kept until the
    whole chain has been read (`end_of_journal`)."""

    def __init__(self) -> None:
        self.rows = 0
        self.prev = GENESIS
        self.balances: dict[str, int] = {}
        self.opened: dict[str, str] = {}
        self.copy_problem: Broken | None = None

    @property
    def wants_receipts(self) -> bool:
        """Whether a receipt is still worth reading: only the first copy problem is told."""
        return self.copy_problem is None

    def add(self, row: Sequence[Any]) -> tuple[Any, ...] | None:
        """Check and apply one row read with CHAIN_COLUMNS (its `at` as ISO text); the
        `transfers` row it implies (in RECEIPT_COLUMNS order), None for an opening."""
        self.rows += 1
        *fields, stored_prev, stored_hash = row
        seq, at, kind, transfer_id, payer, payee, amount, reason, reference = fields
        if seq != self.rows:
            raise Broken(f"journal row {seq}: expected row {self.rows} (a row is missing)", seq)
        if stored_prev != self.prev or row_hash(self.prev, fields) != stored_hash:
            raise Broken(f"journal row {seq}: its hash does not match its contents", seq)
        self.prev = stored_hash
        if kind == "open":
            self.balances[payee], self.opened[payee] = amount, at
            return None
        self.balances[payer] = self.balances.get(payer, 0) - amount
        self.balances[payee] = self.balances.get(payee, 0) + amount
        return (transfer_id, kind, payer, payee, amount, reason, reference, at, seq,
                self.balances[payer], self.balances[payee])  # fmt: skip

    def check_receipt(self, expected: tuple[Any, ...], stored: Sequence[Any] | None) -> None:
        """Hold the stored `transfers` row (its `at` as ISO text) to the one `add` implied."""
        if self.copy_problem is not None:
            return
        transfer_id, seq = expected[0], expected[8]
        if stored is None:
            self.copy_problem = Broken(
                f"journal row {seq}: transfer {transfer_id} has no row in transfers", seq
            )
            return
        for field, value, want in zip(RECEIPT_FIELDS, stored, expected, strict=True):
            if value != want or type(value) is not type(want):
                self.copy_problem = Broken(
                    f"transfers row {transfer_id}: {field} is {shown(field, value)},"
                    f" journal row {seq} says {shown(field, want)}",
                    seq,
                )
                return

    def end_of_journal(self) -> None:
        """The whole chain is sound: now the first receipt that differs is the problem."""
        if self.copy_problem is not None:
            raise self.copy_problem

    def check_wallet(self, agent: str, balance: Any, opened_at: Any) -> None:
        """Hold one stored wallet (its opening time as ISO text) to the replay; call for every
        wallet, then `end_of_wallets`."""
        expected = self.balances.pop(agent, None)
        if expected != balance:
            told = "no opening" if expected is None else shown("balance", expected)
            raise Broken(
                f"wallet {agent}: balance {shown('balance', balance)}, journal says {told}"
            )
        if opened_at != self.opened.get(agent):
            raise Broken(
                f"wallet {agent}: opened_at is {opened_at!r},"
                f" the journal says {self.opened.get(agent)!r}"
            )

    def end_of_wallets(self) -> None:
        """Every wallet the journal opened has a stored wallet."""
        if self.balances:
            first = sorted(self.balances)[0]
            raise Broken(f"wallet {first} is in the journal but not in the wallets")
