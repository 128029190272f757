"""What only the PostgreSQL ledger promises, against the session's real PostgreSQL server: its
schema made once however many workers start at once, and refused when a newer p2e made it;
a journal the server itself keeps append-only, which `verify` checks against tampering done
behind the API's back; failures classified by type (an unreachable server in seconds, a
held lock and a lost race retryable, a missing table not); and one ledger shared by worker
processes transferring between the same wallets at once.

The behaviour every backend shares is in tests/conformance."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors

import p2engine.ledger.postgres as postgres
from p2engine.ledger import open_ledger
from p2engine.ledger.canton import CantonLedger
from p2engine.ledger.config import CantonSettings, LedgerSettings
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.ledger.errors import (
    InvalidTransfer,
    LedgerStorageError,
    LedgerUnavailable,
    UnknownWallet,
)
from p2engine.ledger.journal import iso, row_hash
from p2engine.ledger.models import Receipt
from p2engine.ledger.postgres import JOURNAL_LOCK, SCHEMA_VERSION, TRIGGER, PostgresLedger

D = Decimal
CAP = D("1000")


@pytest.fixture()
async def ledger(database_url: str) -> AsyncIterator[PostgresLedger]:
    """alice (100.00), bob (20.00) and carol (0.00), then t1 alice->bob 10 'lunch' and t2
    bob->carol 2.50 (a reward): journal rows 1-3 are the openings, 4 and 5 the transfers."""
    ledger = PostgresLedger(database_url, CAP)
    await ledger.open_wallet("alice", D("100"))
    await ledger.open_wallet("bob", D("20"))
    await ledger.open_wallet("carol", D("0"))
    await ledger.transfer("t1", "alice", "bob", D("10"), reason="lunch")
    await ledger.transfer("t2", "bob", "carol", D("2.5"), kind="reward")
    assert (await ledger.verify()).ok
    yield ledger
    await ledger.close()


@contextmanager
def behind_the_back(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection of another program, as the superuser the test server has."""
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def count(connection: psycopg.Connection[Any], sql: str) -> Any:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return row[0]


# --- the schema ---------------------------------------------------------------------------


async def test_ledgers_opening_at_once_make_the_schema_once(database_url: str) -> None:
    ledgers = [PostgresLedger(database_url, CAP) for _ in range(4)]
    try:
        await asyncio.gather(*(ledger.metrics() for ledger in ledgers))
        opened = await asyncio.gather(*(ledger.open_wallet("alice", D("5")) for ledger in ledgers))
    finally:
        await asyncio.gather(*(ledger.close() for ledger in ledgers))
    assert sorted(created for _, created in opened) == [False, False, False, True]
    with behind_the_back(database_url) as db:
        rows = db.execute("SELECT component, version FROM p2e_schema").fetchall()
        assert rows == [("ledger", SCHEMA_VERSION)]
        assert count(db, f"SELECT COUNT(*) FROM pg_trigger WHERE tgname = '{TRIGGER}'") == 1
        assert count(db, "SELECT COUNT(*) FROM ledger_journal") == 1


async def test_a_second_ledger_finds_the_schema_and_the_first_ones_wallets(
    ledger: PostgresLedger, database_url: str
) -> None:
    again = PostgresLedger(database_url, CAP)
    try:
        assert await again.balance("bob") == D("27.50")
        assert await again.get_transfer("t1") == await ledger.get_transfer("t1")
    finally:
        await again.close()


async def test_a_schema_made_by_a_newer_p2e_is_refused_and_left_alone(database_url: str) -> None:
    with behind_the_back(database_url) as db:
        db.execute("CREATE TABLE p2e_schema (component TEXT PRIMARY KEY, version INT NOT NULL)")
        db.execute("INSERT INTO p2e_schema VALUES ('ledger', %s)", (SCHEMA_VERSION + 1,))
    ledger = PostgresLedger(database_url, CAP)
    try:
        with pytest.raises(LedgerStorageError, match="made by a newer p2e") as refused:
            await ledger.balance("alice")
        assert not refused.value.retryable
    finally:
        await ledger.close()
    with behind_the_back(database_url) as db:
        assert count(db, "SELECT to_regclass('ledger_wallets')") is None
        assert count(db, "SELECT version FROM p2e_schema") == SCHEMA_VERSION + 1


async def test_other_components_rows_in_p2e_schema_are_left_as_they_are(database_url: str) -> None:
    with behind_the_back(database_url) as db:
        db.execute("CREATE TABLE p2e_schema (component TEXT PRIMARY KEY, version INT NOT NULL)")
        db.execute("INSERT INTO p2e_schema VALUES ('store', 7)")
    ledger = PostgresLedger(database_url, CAP)
    try:
        await ledger.open_wallet("alice", D("1"))
    finally:
        await ledger.close()
    with behind_the_back(database_url) as db:
        rows = db.execute("SELECT component, version FROM p2e_schema ORDER BY 1").fetchall()
        assert rows == [("ledger", SCHEMA_VERSION), ("store", 7)]


# --- the journal is append-only -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_journal SET amount = amount + 100 WHERE seq = 4",
        "UPDATE ledger_journal SET reason = 'rewritten'",
        "DELETE FROM ledger_journal WHERE seq = 5",
        "DELETE FROM ledger_journal",
        "TRUNCATE ledger_journal",
    ],
)
async def test_the_journal_refuses_update_delete_and_truncate_even_to_a_superuser(
    ledger: PostgresLedger, database_url: str, statement: str
) -> None:
    with behind_the_back(database_url) as db:
        with pytest.raises(pg_errors.RaiseException, match="append-only"):
            db.execute(statement)
        # Replica mode skips ordinary triggers, not this one.
        db.execute("SET session_replication_role = replica")
        with pytest.raises(pg_errors.RaiseException, match="append-only"):
            db.execute(statement)
        assert count(db, "SELECT COUNT(*) FROM ledger_journal") == 5
    report = await ledger.verify()
    assert report.ok and report.rows == 5 and report.wallets == 3


async def test_no_balance_can_be_made_negative_even_behind_the_api(
    ledger: PostgresLedger, database_url: str
) -> None:
    with behind_the_back(database_url) as db, pytest.raises(pg_errors.CheckViolation):
        db.execute("UPDATE ledger_wallets SET balance = balance - 10001 WHERE agent = 'alice'")
    assert await ledger.balance("alice") == D("90.00")


async def test_the_journal_chains_each_row_to_the_previous_hash(
    ledger: PostgresLedger, database_url: str
) -> None:
    entries = await ledger.audit()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    with behind_the_back(database_url) as db:
        chain = db.execute("SELECT prev_hash, hash FROM ledger_journal ORDER BY seq").fetchall()
    assert chain[0][0] == "0" * 64
    assert [prev for prev, _ in chain[1:]] == [digest for _, digest in chain[:-1]]
    assert [e.hash for e in entries] == [digest for _, digest in chain]


# --- tamper detection ---------------------------------------------------------------------


@contextmanager
def tampering(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection with the append-only trigger disabled, and enabled again after,
    so only the changed rows give the change away."""
    with behind_the_back(url) as db:
        db.execute(f"ALTER TABLE ledger_journal DISABLE TRIGGER {TRIGGER}")
        yield db
        db.execute(f"ALTER TABLE ledger_journal ENABLE ALWAYS TRIGGER {TRIGGER}")


@pytest.mark.parametrize("seq", [1, 4, 5])
async def test_a_changed_journal_amount_breaks_the_chain_at_that_row(
    ledger: PostgresLedger, database_url: str, seq: int
) -> None:
    with tampering(database_url) as db:
        db.execute("UPDATE ledger_journal SET amount = amount + 1 WHERE seq = %s", (seq,))
    report = await ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.problem == f"journal row {seq}: its hash does not match its contents"


async def test_a_rehashed_row_still_breaks_the_chain_at_the_next_row(
    ledger: PostgresLedger, database_url: str
) -> None:
    """Recomputing the changed row's own hash is not enough: the next row names the old one."""
    with tampering(database_url) as db:
        row = db.execute(
            "SELECT seq, at, kind, transfer_id, payer, payee, amount, reason, reference,"
            " prev_hash FROM ledger_journal WHERE seq = 4"
        ).fetchone()
        assert row is not None
        fields = [row[0], iso(row[1]), *row[2:6], row[6] + 1, *row[7:9]]
        db.execute(
            "UPDATE ledger_journal SET amount = %s, hash = %s WHERE seq = 4",
            (row[6] + 1, row_hash(row[9], fields)),
        )
    report = await ledger.verify()
    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert report.problem == "journal row 5: its hash does not match its contents"


async def test_a_deleted_journal_row_is_named(ledger: PostgresLedger, database_url: str) -> None:
    with tampering(database_url) as db:
        db.execute("DELETE FROM ledger_journal WHERE seq = 3")
    report = await ledger.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert report.problem == "journal row 4: expected row 3 (a row is missing)"


@pytest.mark.parametrize(
    ("statement", "problem", "seq"),
    [
        ("UPDATE ledger_wallets SET balance = balance + 100 WHERE agent = 'bob'",
         "wallet bob: balance 28.50, journal says 27.50", None),
        ("UPDATE ledger_transfers SET amount = 500 WHERE transfer_id = 't1'",
         "transfers row t1: amount is 5.00, journal row 4 says 10.00", 4),
        ("UPDATE ledger_transfers SET payee_balance = 1 WHERE transfer_id = 't1'",
         "transfers row t1: payee_balance is 0.01, journal row 4 says 30.00", 4),
        ("UPDATE ledger_transfers SET at = '2020-01-01T00:00:00+00:00' WHERE transfer_id = 't2'",
         "transfers row t2: at is '2020-01-01T00:00:00+00:00', journal row 5 says '", 5),
        ("DELETE FROM ledger_transfers WHERE transfer_id = 't1'",
         "journal row 4: transfer t1 has no row in transfers", 4),
        ("INSERT INTO ledger_transfers VALUES ('t9', 'transfer', 'alice', 'bob', 100, '', '',"
         " '2025-01-01T00:00:00+00:00', 6, 8900, 3850)",
         "transfers row t9 is not in the journal", None),
        ("UPDATE ledger_wallets SET opened_at = '2020-01-01T00:00:00+00:00' WHERE agent = 'bob'",
         "wallet bob: opened_at is '2020-01-01T00:00:00+00:00', the journal says '", None),
        ("INSERT INTO ledger_wallets VALUES ('mallory', 100, now())",
         "wallet mallory: balance 1.00, journal says no opening", None),
        (f"ALTER TABLE ledger_journal DISABLE TRIGGER {TRIGGER}",
         f"append-only trigger {TRIGGER} is not always enabled", None),
        (f"DROP TRIGGER {TRIGGER} ON ledger_journal",
         f"append-only trigger {TRIGGER} is missing", None),
    ],
)  # fmt: skip
async def test_verify_names_a_copy_changed_behind_the_api(
    ledger: PostgresLedger, database_url: str, statement: str, problem: str, seq: int | None
) -> None:
    with behind_the_back(database_url) as db:
        db.execute(statement)
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and report.problem.startswith(problem), report.problem
    assert report.first_bad_seq == seq
    assert report.rows == 5


# --- failures by type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://postgres@127.0.0.1:1/x", "127.0.0.1:1/x"),
        ("postgresql://[bad", "an unreadable database URL"),
        ("not a url at all", "an unreadable database URL"),
    ],
)
async def test_an_unreachable_or_unreadable_url_is_unavailable_at_once(
    url: str, named: str
) -> None:
    ledger = PostgresLedger(url, CAP)
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable, match="cannot reach the ledger database at") as failed:
        await ledger.transfer("t1", "alice", "bob", D("1"))
    assert time.monotonic() - started < 10
    assert named in str(failed.value)
    assert failed.value.retryable
    await ledger.close()


async def test_a_server_that_never_answers_is_unavailable_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A port that accepts connections and says nothing (a hung server, a black-holing
    firewall) fails after the connect timeout rather than hanging the worker."""
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        ledger = PostgresLedger(f"postgresql://postgres@127.0.0.1:{port}/p2e", CAP)
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match=f"127.0.0.1:{port}"):
            await ledger.balance("alice")
        assert time.monotonic() - started < 8
        await ledger.close()


async def test_a_held_journal_lock_is_unavailable_and_a_retry_succeeds(
    ledger: PostgresLedger, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_MS", 200)
    impatient = PostgresLedger(database_url, CAP)
    try:
        with behind_the_back(database_url) as db:
            db.execute("SELECT pg_advisory_lock(%s)", (JOURNAL_LOCK,))
            with pytest.raises(LedgerUnavailable, match="lock timeout") as failed:
                await impatient.transfer("t3", "alice", "bob", D("1"))
            assert failed.value.retryable
            assert await impatient.get_transfer("t3") is None
        receipt = await impatient.transfer("t3", "alice", "bob", D("1"))
        assert (receipt.seq, receipt.payer_balance) == (6, D("89.00"))
    finally:
        await impatient.close()


async def test_a_lost_race_is_retried_inside_and_then_unavailable(ledger: PostgresLedger) -> None:
    """Serialization failures and deadlocks are retried in a new transaction; a race lost
    every time is LedgerUnavailable, for Temporal to retry later."""
    lost: list[Exception] = [
        pg_errors.SerializationFailure("could not serialize access"),
        pg_errors.DeadlockDetected("deadlock detected"),
    ]
    attempts = 0

    async def racing(connection: Any) -> str:
        nonlocal attempts
        attempts += 1
        if lost:
            raise lost.pop(0)
        return "done"

    assert await ledger._run(racing) == "done"
    assert attempts == 3

    async def always_losing(connection: Any) -> str:
        nonlocal attempts
        attempts += 1
        raise pg_errors.SerializationFailure("could not serialize access")

    attempts = 0
    with pytest.raises(LedgerUnavailable, match="could not serialize access") as failed:
        await ledger._run(always_losing)
    assert attempts == postgres.ATTEMPTS
    assert failed.value.retryable


async def test_a_table_dropped_under_an_open_ledger_fails_for_good(
    ledger: PostgresLedger, database_url: str
) -> None:
    with behind_the_back(database_url) as db:
        db.execute("DROP TABLE ledger_transfers")
    with pytest.raises(LedgerStorageError, match="ledger_transfers") as failed:
        await ledger.get_transfer("t1")
    assert not failed.value.retryable


async def test_a_connection_the_server_ended_is_replaced(
    ledger: PostgresLedger, database_url: str
) -> None:
    with behind_the_back(database_url) as db:
        ended = db.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended is not None and ended[0] >= 1
    assert await ledger.balance("alice") == D("90.00")


async def test_text_postgres_cannot_store_is_refused_before_it_reaches_the_server(
    ledger: PostgresLedger,
) -> None:
    """PostgreSQL's text holds no NUL character: a command with one is a business error (a
    retry cannot help), and a read of such a name finds nothing."""
    before = await ledger.metrics()
    with pytest.raises(InvalidTransfer, match="NUL"):
        await ledger.transfer("t3", "alice", "bob", D("1"), reason="a\x00b")
    with pytest.raises(InvalidTransfer, match="NUL"):
        await ledger.open_wallet("mallory\x00", D("1"))
    with pytest.raises(UnknownWallet):
        await ledger.balance("alice\x00")
    with pytest.raises(UnknownWallet):
        await ledger.history("alice\x00")
    assert await ledger.get_transfer("t1\x00") is None
    assert await ledger.metrics() == before


async def test_a_negative_limit_is_no_limit_as_on_sqlite(ledger: PostgresLedger) -> None:
    assert [r.transfer_id for r in await ledger.history("bob", limit=-1)] == ["t2", "t1"]
    assert len(await ledger.audit(limit=-1)) == 5


# --- open_ledger ----------------------------------------------------------------------------


async def test_open_ledger_picks_postgres_for_a_database_url_unless_canton_is_chosen(
    tmp_path: Path,
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/x"
    chosen = open_ledger(LedgerSettings(), tmp_path, database_url=url)
    assert isinstance(chosen, PostgresLedger) and chosen.url == url
    assert chosen.max_transfer == LedgerSettings().max_transfer
    assert isinstance(open_ledger(LedgerSettings(), tmp_path), EmbeddedLedger)
    canton = LedgerSettings(backend="canton", canton=CantonSettings(url="http://127.0.0.1:1"))
    chosen = open_ledger(canton, tmp_path, database_url=url)
    assert isinstance(chosen, CantonLedger)
    await chosen.close()


# --- worker processes sharing one ledger ------------------------------------------------------

PROCESSES = 3
TRANSFERS = 20
# One worker process: opens the ledger, says "ready", waits for "go", then makes its
# transfers all at once, retrying LedgerUnavailable with the same id as an activity would;
# prints one JSON line per transfer.
WORKER = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from decimal import Decimal
    from p2engine.ledger.errors import BusinessError, LedgerUnavailable
    from p2engine.ledger.postgres import PostgresLedger

    url, index, transfers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    async def one(ledger, tid, payer, payee, amount):
        for attempt in range(20):
            try:
                receipt = await ledger.transfer(tid, payer, payee, amount)
                return {"tid": tid, "receipt": receipt.model_dump(mode="json")}
            except BusinessError as exc:
                return {"tid": tid, "error": type(exc).__name__}
            except LedgerUnavailable:
                await asyncio.sleep(0.05 * (attempt + 1))
        return {"tid": tid, "error": "gave up"}

    async def main():
        ledger = PostgresLedger(url, Decimal("1000"))
        await ledger.metrics()
        rng = random.Random(index)
        plan = []
        for i in range(transfers):
            payer, payee = ("alice", "bob") if (i + index) % 2 else ("bob", "alice")
            amount = Decimal(rng.randint(100, 3000)) / 100
            if i == 10:  # more than alice and bob have together: refused in any order
                amount = Decimal("200")
            plan.append((f"p{index}-t{i}", payer, payee, amount))
        plan.append(("shared", "dave", "carol", Decimal("0.5")))  # one command from every worker
        plan.append(("clash", "dave", "carol", Decimal(index + 1)))  # one id, other details
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(one(ledger, *step) for step in plan))
        await ledger.close()
        for result in results:
            print(json.dumps(result), flush=True)

    asyncio.run(main())
    """
)


async def test_opposing_transfers_from_worker_processes_keep_the_ledger_consistent(
    ledger: PostgresLedger, database_url: str
) -> None:
    """Three worker processes at once, each with 20 concurrent transfers between alice and
    bob in both directions, one command all of them send (`shared`) and one transfer id each
    sends with other details (`clash`), both paid by dave: no money is made or lost, no
    balance goes negative, every transfer is in the journal once, and the receipts replay."""
    await ledger.open_wallet("dave", D("10"))
    before = {agent: await ledger.balance(agent) for agent in ("alice", "bob", "carol", "dave")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url, str(index), str(TRANSFERS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        for worker in workers:  # all of them connected: start them together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [worker.returncode for worker in workers] == [0] * PROCESSES
    results = [json.loads(line) for output in outputs for line in output.splitlines()]
    assert len(results) == PROCESSES * (TRANSFERS + 2)

    receipts: dict[str, list[Receipt]] = {}
    errors: Counter[str] = Counter()
    for result in results:
        if "receipt" in result:
            receipts.setdefault(result["tid"], []).append(Receipt(**result["receipt"]))
        else:
            errors[result["error"]] += 1
    # The shared command is made once and every worker gets its one receipt; of the clashing
    # commands one is made and the others are duplicates.
    shared = receipts.pop("shared")
    assert len(shared) == PROCESSES and all(r == shared[0] for r in shared)
    (clash,) = receipts.pop("clash")
    assert errors["DuplicateTransfer"] == PROCESSES - 1
    assert errors["InsufficientFunds"] >= PROCESSES
    assert set(errors) <= {"DuplicateTransfer", "InsufficientFunds"}, errors
    assert all(len(made) == 1 for made in receipts.values())
    made = [made[0] for made in receipts.values()]
    assert {r.payer for r in made} == {"alice", "bob"}, "money moved both ways"

    final = {agent: await ledger.balance(agent) for agent in before}
    assert all(balance >= 0 for balance in final.values()), final
    assert sum(final.values()) == sum(before.values())
    assert final["alice"] + final["bob"] == before["alice"] + before["bob"]
    assert final["dave"] == D("10") - shared[0].amount - clash.amount

    journal = await ledger.audit(limit=10_000)
    ids = Counter(entry.transfer_id for entry in journal if entry.transfer_id is not None)
    assert all(n == 1 for n in ids.values()), ids
    assert set(ids) == {"t1", "t2", "shared", "clash", *receipts}
    # Replaying the journal in order from the openings gives every receipt's balances.
    replayed: dict[str, Decimal] = {}
    for entry in journal:
        if entry.kind == "open":
            replayed[entry.payee] = entry.amount
            continue
        assert entry.payer is not None and entry.transfer_id is not None
        replayed[entry.payer] -= entry.amount
        replayed[entry.payee] += entry.amount
        assert replayed[entry.payer] >= 0
        receipt = await ledger.get_transfer(entry.transfer_id)
        assert receipt is not None and receipt.seq == entry.seq
        assert (receipt.payer_balance, receipt.payee_balance) == (
            replayed[entry.payer],
            replayed[entry.payee],
        )
    assert replayed == final
    report = await ledger.verify()
    assert report.ok, report.problem
    assert report.rows == len(journal)
