"""What only the embedded (SQLite) ledger promises: an append-only, hash-chained journal that
`verify` checks against tampering done behind the API's back, several ledgers (processes)
sharing one file, exact money, and an unopenable file being LedgerUnavailable.

The file itself (created only by init, empty, foreign or damaged files refused, verify of
the receipts and of SQLite's pages) is in test_ledger_storage.py; the shared behaviour of
every backend is in tests/conformance."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from p2engine.ledger.embedded import EmbeddedLedger, row_hash
from p2engine.ledger.errors import InsufficientFunds, LedgerUnavailable

D = Decimal


@pytest.fixture()
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    """alice (100.00), bob (20.00) and carol (0.00), then t1 alice->bob 10 and t2 bob->carol
    2.50: journal rows 1-3 are the openings, 4 and 5 the transfers."""
    ledger = EmbeddedLedger(tmp_path / "ledger.db", max_transfer=D("1000"))
    await ledger.open_wallet("alice", D("100"))
    await ledger.open_wallet("bob", D("20"))
    await ledger.open_wallet("carol", D("0"))
    await ledger.transfer("t1", "alice", "bob", D("10"))
    await ledger.transfer("t2", "bob", "carol", D("2.5"))
    assert (await ledger.verify()).ok
    yield ledger
    await ledger.close()


@contextmanager
def behind_the_back(ledger: EmbeddedLedger) -> Iterator[sqlite3.Connection]:
    """A second connection to the ledger's file, as any other program could open."""
    with closing(sqlite3.connect(ledger.path, isolation_level=None)) as db:
        yield db


def drop_triggers(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER journal_no_update")
    db.execute("DROP TRIGGER journal_no_delete")


# --- the journal is append-only -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal SET amount = amount + 100 WHERE seq = 4",
        "UPDATE journal SET reason = 'rewritten'",
        "DELETE FROM journal WHERE seq = 5",
        "DELETE FROM journal",
    ],
)
async def test_the_journal_refuses_update_and_delete(
    ledger: EmbeddedLedger, statement: str
) -> None:
    with behind_the_back(ledger) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
        assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 5
    report = await ledger.verify()
    assert report.ok and report.rows == 5 and report.wallets == 3


async def test_the_journal_chains_each_row_to_the_previous_hash(ledger: EmbeddedLedger) -> None:
    entries = await ledger.audit()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    with behind_the_back(ledger) as db:
        chain = db.execute("SELECT prev_hash, hash FROM journal ORDER BY seq").fetchall()
    assert chain[0][0] == "0" * 64
    for (_, previous), (prev_hash, _) in itertools.pairwise(chain):
        assert prev_hash == previous
    assert [e.hash for e in entries] == [h for _, h in chain]
    assert len({h for _, h in chain}) == 5


# --- tamper detection ---------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 4, 5])
async def test_a_changed_journal_amount_breaks_the_chain_at_that_row(
    ledger: EmbeddedLedger, seq: int
) -> None:
    with behind_the_back(ledger) as db:
        drop_triggers(db)
        db.executescript(
            f"UPDATE journal SET amount = amount + 1 WHERE seq = {seq};"
            # Put the triggers back, so only the row itself gives the change away.
            "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal"
            " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
            "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal"
            " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
        )
    report = await ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.problem is not None and f"journal row {seq}" in report.problem


async def test_a_rehashed_row_still_breaks_the_chain_at_the_next_row(
    ledger: EmbeddedLedger,
) -> None:
    """Recomputing the changed row's own hash is not enough: the next row names the old one."""
    with behind_the_back(ledger) as db:
        drop_triggers(db)
        row = db.execute(
            "SELECT seq, at, kind, transfer_id, payer, payee, amount, reason, reference,"
            " prev_hash FROM journal WHERE seq = 4"
        ).fetchone()
        fields, prev = [*row[:6], row[6] + 1, *row[7:9]], row[9]
        db.execute(
            "UPDATE journal SET amount = ?, hash = ? WHERE seq = 4",
            (row[6] + 1, row_hash(prev, fields)),
        )
    report = await ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == 5
    assert report.problem is not None and "journal row 5" in report.problem


async def test_deleting_the_last_journal_row_is_caught_by_the_balances(
    ledger: EmbeddedLedger,
) -> None:
    with behind_the_back(ledger) as db:
        drop_triggers(db)
        db.execute("DELETE FROM journal WHERE seq = (SELECT MAX(seq) FROM journal)")
    report = await ledger.verify()
    assert not report.ok
    # The chain up to row 4 is intact; t2 (bob -> carol) is missing from the replay.
    assert report.rows == 4
    assert report.problem is not None
    assert "wallet bob" in report.problem or "wallet carol" in report.problem


async def test_deleting_a_middle_journal_row_names_the_gap(ledger: EmbeddedLedger) -> None:
    with behind_the_back(ledger) as db:
        drop_triggers(db)
        db.execute("DELETE FROM journal WHERE seq = 3")
    report = await ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == 4
    assert report.problem is not None and "journal row 4" in report.problem


async def test_a_balance_changed_directly_names_the_wallet(ledger: EmbeddedLedger) -> None:
    with behind_the_back(ledger) as db:
        db.execute("UPDATE wallets SET balance = balance + 100000 WHERE agent = 'carol'")
    assert await ledger.balance("carol") == D("1002.50")
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and "wallet carol" in report.problem
    assert "1002.50" in report.problem and "2.50" in report.problem


async def test_a_wallet_without_an_opening_row_is_caught(ledger: EmbeddedLedger) -> None:
    with behind_the_back(ledger) as db:
        db.execute("INSERT INTO wallets (agent, balance, opened_at) VALUES ('mallory', 0, 'x')")
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and "wallet mallory" in report.problem


@pytest.mark.parametrize("trigger", ["journal_no_update", "journal_no_delete"])
async def test_a_dropped_trigger_alone_is_caught(ledger: EmbeddedLedger, trigger: str) -> None:
    with behind_the_back(ledger) as db:
        db.execute(f"DROP TRIGGER {trigger}")
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and trigger in report.problem


async def test_reopening_the_file_neither_restores_the_triggers_nor_masks_the_change(
    ledger: EmbeddedLedger,
) -> None:
    """Opening a ledger never runs the schema again: the dropped triggers stay missing, and
    the tampered row stays caught."""
    with behind_the_back(ledger) as db:
        drop_triggers(db)
        db.execute("UPDATE journal SET reason = 'rewritten' WHERE seq = 4")
    reopened = EmbeddedLedger(ledger.path)
    try:
        report = await reopened.verify()
        assert not report.ok and report.first_bad_seq == 4
    finally:
        await reopened.close()
    with behind_the_back(ledger) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []


# --- one file, several ledgers ------------------------------------------------------------


async def test_a_second_ledger_on_the_same_file_sees_the_first_ones_transfers(
    ledger: EmbeddedLedger,
) -> None:
    other = EmbeddedLedger(ledger.path, max_transfer=D("1000"))
    try:
        assert await other.balance("bob") == D("27.50")
        assert await other.get_transfer("t1") == await ledger.get_transfer("t1")
        receipt = await other.transfer("t3", "carol", "alice", D("1"))
        assert await ledger.get_transfer("t3") == receipt
        assert await ledger.balance("alice") == D("91.00")
        # Idempotency holds across instances too.
        assert await ledger.transfer("t3", "carol", "alice", D("1")) == receipt
        assert await ledger.balance("carol") == D("1.50")
    finally:
        await other.close()


async def test_two_ledgers_used_concurrently_keep_the_supply_constant(
    ledger: EmbeddedLedger,
) -> None:
    other = EmbeddedLedger(ledger.path, max_transfer=D("1000"))
    names = ["alice", "bob", "carol"]
    supply = (await ledger.metrics()).supply
    rng = random.Random(7)
    plan = []
    for i in range(120):
        payer, payee = rng.sample(names, 2)
        plan.append((f"p{i}", payer, payee, D(rng.randint(1, 4000)) / 100))

    async def run(i: int, step: tuple[str, str, str, Decimal]) -> bool:
        try:
            await (ledger if i % 2 else other).transfer(*step)
        except InsufficientFunds:
            return False
        return True

    try:
        done = await asyncio.gather(*(run(i, step) for i, step in enumerate(plan)))
        assert any(done) and not all(done)
        for led in (ledger, other):
            metrics = await led.metrics()
            assert metrics.supply == supply
            assert metrics.transfers == 2 + sum(done)
            assert all(w.balance >= 0 for w in await led.overview())
        report = await other.verify()
        assert report.ok, report.problem
        assert report.rows == 5 + sum(done)
    finally:
        await other.close()


# --- money --------------------------------------------------------------------------------


async def test_money_is_stored_exactly_as_integer_cents(tmp_path: Path) -> None:
    ledger = EmbeddedLedger(tmp_path / "ledger.db")
    await ledger.open_wallet("alice", D("1"))
    await ledger.open_wallet("bob", D("0"))
    await ledger.transfer("a", "alice", "bob", D("0.1"))
    await ledger.transfer("b", "alice", "bob", D("0.2"))
    assert await ledger.balance("bob") == D("0.3")
    assert str(await ledger.balance("bob")) == "0.30"
    for i in range(70):
        await ledger.transfer(f"c{i}", "alice", "bob", D("0.01"))
    assert str(await ledger.balance("alice")) == "0.00"
    assert str(await ledger.balance("bob")) == "1.00"
    metrics = await ledger.metrics()
    assert (str(metrics.supply), str(metrics.volume)) == ("1.00", "1.00")
    with closing(sqlite3.connect(ledger.path)) as db:
        rows = db.execute("SELECT agent, balance, typeof(balance) FROM wallets ORDER BY agent")
        assert rows.fetchall() == [("alice", 0, "integer"), ("bob", 100, "integer")]
        amounts = db.execute("SELECT DISTINCT typeof(amount) FROM journal").fetchall()
        assert amounts == [("integer",)]
    await ledger.close()


async def test_large_balances_stay_exact(tmp_path: Path) -> None:
    ledger = EmbeddedLedger(tmp_path / "ledger.db", max_transfer=D("1000"))
    await ledger.open_wallet("whale", D("12345678901.23"))
    await ledger.open_wallet("minnow", D("0.01"))
    receipt = await ledger.transfer("t", "whale", "minnow", D("999.99"))
    assert receipt.payer_balance == D("12345677901.24")
    assert receipt.payee_balance == D("1000.00")
    assert (await ledger.metrics()).supply == D("12345678901.24")
    await ledger.close()


# --- an unusable file ---------------------------------------------------------------------


async def test_a_ledger_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "ledger.db"
    directory.mkdir()
    ledger = EmbeddedLedger(directory)  # opens at the first command
    with pytest.raises(LedgerUnavailable, match="unable to open database file"):
        await ledger.balance("alice")
    assert LedgerUnavailable.retryable is True
