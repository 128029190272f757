"""The embedded ledger's file: only `create` (`p2e ledger init`) makes one, and only where no
file exists; an empty, truncated, foreign or damaged file is refused with one line naming
it and is left as it was, never turned into a new, empty ledger. `verify` holds every table
the API reads to the journal and names the table of a damaged page; other commands meeting
damage fail for good (LedgerStorageError), while a lock stays LedgerUnavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

import p2engine.ledger.embedded as embedded
from p2engine.agents.tools.ledger import NoArgs, TransferArgs, check_balance, transfer_funds
from p2engine.agents.tools.registry import ToolContext, ToolError, ToolServices
from p2engine.ledger import open_ledger
from p2engine.ledger.config import LedgerSettings
from p2engine.ledger.embedded import APPLICATION_ID, SCHEMA, SCHEMA_VERSION, EmbeddedLedger
from p2engine.ledger.errors import LedgerStorageError, LedgerUnavailable

D = Decimal
Command = Callable[[EmbeddedLedger], Awaitable[object]]
COMMANDS: dict[str, Command] = {
    "open_wallet": lambda ledger: ledger.open_wallet("alice", D("1")),
    "balance": lambda ledger: ledger.balance("alice"),
    "transfer": lambda ledger: ledger.transfer("t9", "alice", "bob", D("1")),
    "get_transfer": lambda ledger: ledger.get_transfer("t1"),
    "history": lambda ledger: ledger.history("alice"),
    "overview": lambda ledger: ledger.overview(),
    "metrics": lambda ledger: ledger.metrics(),
    "audit": lambda ledger: ledger.audit(),
    "verify": lambda ledger: ledger.verify(),
}


@contextmanager
def behind_the_back(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of another program; closing it checkpoints the WAL into the file."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        yield db


async def make_ledger(path: Path, transfers: int = 0) -> None:
    """alice (100.00), bob (20.00), carol (0.00); t1 alice->bob 10 'lunch' (journal row 4), t2
    bob->carol 2.50 (row 5), then `transfers` more of 0.01 each; closed, so the file holds
    everything."""
    ledger = EmbeddedLedger(path, max_transfer=D("1000"))
    for agent, initial in (("alice", "100"), ("bob", "20"), ("carol", "0")):
        await ledger.open_wallet(agent, D(initial))
    await ledger.transfer("t1", "alice", "bob", D("10"), reason="lunch", reference="conv-1")
    await ledger.transfer("t2", "bob", "carol", D("2.5"), kind="reward")
    for i in range(transfers):
        await ledger.transfer(f"x{i}", "alice", "carol", D("0.01"), reason="r" * 40)
    assert (await ledger.verify()).ok
    await ledger.close()


@pytest.fixture()
async def path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    await make_ledger(path)
    return path


@pytest.fixture()
async def ledger(path: Path) -> AsyncIterator[EmbeddedLedger]:
    ledger = EmbeddedLedger(path, max_transfer=D("1000"), create=False)
    yield ledger
    await ledger.close()


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- only init creates, and only where no file exists --------------------------------------


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
async def test_without_create_a_missing_file_is_refused_and_not_made(
    tmp_path: Path, command: Command
) -> None:
    state_dir = tmp_path / "state"
    ledger = open_ledger(LedgerSettings(), state_dir)
    assert isinstance(ledger, EmbeddedLedger)
    with pytest.raises(LedgerStorageError) as refused:
        await command(ledger)
    assert str(refused.value) == (
        f"no ledger at {state_dir / 'ledger.db'}; create it with `p2e ledger init`"
    )
    assert refused.value.retryable is False
    assert not state_dir.exists()
    await ledger.close()


async def test_opening_touches_nothing_until_the_first_command(tmp_path: Path) -> None:
    """A worker builds its ledger at start: with no ledger file it still starts."""
    ledger = open_ledger(LedgerSettings(), tmp_path)
    await ledger.close()
    assert list(tmp_path.iterdir()) == []


async def test_create_makes_a_stamped_ledger_and_leaves_no_draft(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ledger = open_ledger(LedgerSettings(), state_dir, create=True)
    _, created = await ledger.open_wallet("alice", D("5"))
    await ledger.close()
    assert created
    assert list(state_dir.iterdir()) == [state_dir / "ledger.db"]
    with behind_the_back(state_dir / "ledger.db") as db:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again = open_ledger(LedgerSettings(), state_dir)
    assert await again.balance("alice") == D("5.00")
    await again.close()


async def test_ledgers_creating_one_file_at_once_make_one_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledgers = [EmbeddedLedger(path, create=True) for _ in range(8)]
    opened = await asyncio.gather(
        *(ledger.open_wallet("alice", D(i)) for i, ledger in enumerate(ledgers, start=1))
    )
    assert sum(created for _, created in opened) == 1
    assert len({wallet.balance for wallet, _ in opened}) == 1
    report = await ledgers[0].verify()
    assert report.ok and report.rows == 1
    for ledger in ledgers:
        await ledger.close()
    assert list(tmp_path.iterdir()) == [path]


# --- a file that is not a ledger is refused and left as it is ------------------------------


def _write(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def _sqlite(path: Path, script: str) -> None:
    with behind_the_back(path) as db:
        db.executescript(script)


async def _truncated(path: Path, size: int) -> None:
    await make_ledger(path, transfers=100)
    with path.open("r+b") as file:
        file.truncate(size)


NOT_A_LEDGER: dict[str, tuple[Callable[[Path], Awaitable[None] | None], str]] = {
    "empty": (
        lambda p: _write(p, b""),
        "the ledger file {path} is empty; restore it from a backup"
        " (`p2e ledger init` creates a ledger only where no file exists)",
    ),
    "text": (
        lambda p: _write(p, b"not a ledger\n" * 400),
        "ledger {path} is unreadable: file is not a database",
    ),
    "truncated in the header": (
        lambda p: _truncated(p, 60),
        "ledger {path} is unreadable: database disk image is malformed",
    ),
    "truncated to 3 pages": (
        lambda p: _truncated(p, 3 * 4096),
        "ledger {path} is unreadable: database disk image is malformed",
    ),
    "another program's database": (
        lambda p: _sqlite(p, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);"),
        "{path} is not a p2e ledger (no table journal)",
    ),
    "our tables, another application id": (
        lambda p: _sqlite(p, SCHEMA + "PRAGMA application_id = 1234;"),
        "{path} is not a p2e ledger (SQLite application id 0x4d2)",
    ),
    "a newer schema": (
        lambda p: _sqlite(
            p, SCHEMA + f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 2;"
        ),
        "{path} is a ledger of schema version 2; this p2e reads version 1",
    ),
    "a column missing": (
        lambda p: _sqlite(p, SCHEMA + "ALTER TABLE transfers DROP COLUMN payee_balance;"),
        "{path} is not a p2e ledger (table transfers has the columns transfer_id, kind, payer,"
        " payee, amount, reason, reference, at, seq, payer_balance)",
    ),
}


@pytest.mark.parametrize("create", [False, True], ids=["command", "init"])
@pytest.mark.parametrize("case", NOT_A_LEDGER.values(), ids=NOT_A_LEDGER.keys())
async def test_a_file_that_is_not_a_ledger_is_refused_and_left_as_it_is(
    tmp_path: Path,
    case: tuple[Callable[[Path], Awaitable[None] | None], str],
    create: bool,
) -> None:
    make, message = case
    path = tmp_path / "ledger.db"
    if (made := make(path)) is not None:
        await made
    before = listing(tmp_path)
    ledger = EmbeddedLedger(path, create=create)
    for command in (COMMANDS["open_wallet"], COMMANDS["balance"], COMMANDS["verify"]):
        with pytest.raises(LedgerStorageError) as refused:
            await command(ledger)
        assert str(refused.value).startswith(message.format(path=path))
        assert "\n" not in str(refused.value)
    await ledger.close()
    assert listing(tmp_path) == before


async def test_a_ledger_made_before_files_were_stamped_opens_and_is_stamped(path: Path) -> None:
    with behind_the_back(path) as db:
        db.executescript("PRAGMA application_id = 0; PRAGMA user_version = 0;")
    ledger = EmbeddedLedger(path, create=False)
    assert await ledger.balance("bob") == D("27.50")
    assert (await ledger.verify()).ok
    await ledger.close()
    with behind_the_back(path) as db:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


# --- verify holds the receipts to the journal -----------------------------------------------


@pytest.mark.parametrize(
    ("statement", "problem", "seq"),
    [
        ("UPDATE transfers SET amount = 500 WHERE transfer_id = 't1'",
         "transfers row t1: amount is 5.00, journal row 4 says 10.00", 4),
        ("UPDATE transfers SET reason = 'dinner' WHERE transfer_id = 't1'",
         "transfers row t1: reason is 'dinner', journal row 4 says 'lunch'", 4),
        ("UPDATE transfers SET payee = 'carol' WHERE transfer_id = 't1'",
         "transfers row t1: payee is 'carol', journal row 4 says 'bob'", 4),
        ("UPDATE transfers SET payer = 'carol' WHERE transfer_id = 't2'",
         "transfers row t2: payer is 'carol', journal row 5 says 'bob'", 5),
        ("UPDATE transfers SET kind = 'transfer' WHERE transfer_id = 't2'",
         "transfers row t2: kind is 'transfer', journal row 5 says 'reward'", 5),
        ("UPDATE transfers SET reference = 'conv-2' WHERE transfer_id = 't1'",
         "transfers row t1: reference is 'conv-2', journal row 4 says 'conv-1'", 4),
        ("UPDATE transfers SET at = '2020-01-01T00:00:00+00:00' WHERE transfer_id = 't2'",
         "transfers row t2: at is '2020-01-01T00:00:00+00:00', journal row 5 says '", 5),
        ("UPDATE transfers SET seq = 9 WHERE transfer_id = 't2'",
         "transfers row t2: seq is 9, journal row 5 says 5", 5),
        ("UPDATE transfers SET payer_balance = 1 WHERE transfer_id = 't2'",
         "transfers row t2: payer_balance is 0.01, journal row 5 says 27.50", 5),
        ("UPDATE transfers SET payee_balance = 1 WHERE transfer_id = 't1'",
         "transfers row t1: payee_balance is 0.01, journal row 4 says 30.00", 4),
        ("DELETE FROM transfers WHERE transfer_id = 't1'",
         "journal row 4: transfer t1 has no row in transfers", 4),
        ("UPDATE transfers SET transfer_id = 't1-forged' WHERE transfer_id = 't1'",
         "journal row 4: transfer t1 has no row in transfers", 4),
        ("INSERT INTO transfers VALUES ('t9', 'transfer', 'alice', 'bob', 100, '', '',"
         " '2025-01-01T00:00:00+00:00', 6, 8900, 3850)",
         "transfers row t9 is not in the journal", None),
        ("UPDATE wallets SET opened_at = '2020-01-01T00:00:00+00:00' WHERE agent = 'bob'",
         "wallet bob: opened_at is '2020-01-01T00:00:00+00:00', the journal says '", None),
    ],
)  # fmt: skip
async def test_verify_names_a_receipt_or_wallet_changed_behind_the_api(
    path: Path, ledger: EmbeddedLedger, statement: str, problem: str, seq: int | None
) -> None:
    with behind_the_back(path) as db:
        db.execute(statement)
        changed = db.total_changes
    assert changed == 1
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and report.problem.startswith(problem), report.problem
    assert report.first_bad_seq == seq
    assert report.rows == 5


async def test_a_broken_chain_is_named_before_the_copy_it_no_longer_matches(
    path: Path, ledger: EmbeddedLedger
) -> None:
    """A journal row changed and rehashed differs from its receipt, but the chain breaks at
    the next row: that is the report, since the journal is what the receipts are held to."""
    with behind_the_back(path) as db:
        db.executescript(
            "DROP TRIGGER journal_no_update; UPDATE journal SET amount = 1 WHERE seq = 4;"
        )
    report = await ledger.verify()
    assert report.problem == "journal row 4: its hash does not match its contents"


# --- damage SQLite reports -----------------------------------------------------------------


def corrupt_page(path: Path, name: str) -> None:
    """Write garbage over the root page of table or index `name`, the WAL checkpointed."""
    with behind_the_back(path) as db:
        query = "SELECT rootpage FROM sqlite_master WHERE name = ?"
        (root,) = db.execute(query, (name,)).fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
    assert not path.with_name(path.name + "-wal").exists(), "closed: the WAL is in the file"
    assert root > 1, "not the schema's page"
    with path.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xde\xad\xbe\xef" * (size // 4))


@pytest.mark.parametrize(
    ("damaged", "table"),
    [
        ("transfers", "transfers"),
        ("transfers_payer", "transfers"),
        ("sqlite_autoindex_transfers_1", "transfers"),
        ("journal", "journal"),
        ("wallets", "wallets"),
    ],
)
async def test_verify_names_the_table_of_a_corrupt_page(
    tmp_path: Path, damaged: str, table: str
) -> None:
    path = tmp_path / "ledger.db"
    await make_ledger(path, transfers=300)
    corrupt_page(path, damaged)
    ledger = EmbeddedLedger(path, create=False)
    report = await ledger.verify()
    await ledger.close()
    assert not report.ok
    assert report.problem is not None
    assert report.problem.startswith(f"table {table}: "), report.problem
    assert "\n" not in report.problem


@pytest.mark.parametrize("command", ["transfer", "get_transfer", "history", "metrics"])
async def test_a_command_meeting_a_corrupt_page_fails_for_good_in_one_line(
    tmp_path: Path, command: str
) -> None:
    path = tmp_path / "ledger.db"
    await make_ledger(path, transfers=300)
    corrupt_page(path, "transfers")
    before = path.read_bytes()
    ledger = EmbeddedLedger(path, create=False)
    with pytest.raises(LedgerStorageError) as failed:
        await COMMANDS[command](ledger)
    await ledger.close()
    assert str(failed.value) == (f"ledger {path} is unreadable: database disk image is malformed")
    assert failed.value.retryable is False
    assert path.read_bytes() == before


async def test_text_that_is_not_utf8_is_damage_not_a_lock(
    path: Path, ledger: EmbeddedLedger
) -> None:
    with behind_the_back(path) as db:
        db.execute("UPDATE transfers SET reason = CAST(X'FF' AS TEXT) WHERE transfer_id = 't1'")
    with pytest.raises(LedgerStorageError, match="Could not decode to UTF-8 column 'reason'"):
        await ledger.history("alice")
    report = await ledger.verify()
    assert report.problem is not None
    assert report.problem.startswith("table transfers: Could not decode to UTF-8")


async def test_a_table_dropped_under_an_open_ledger_is_damage(
    path: Path, ledger: EmbeddedLedger
) -> None:
    assert await ledger.history("alice") != []
    with behind_the_back(path) as db:
        db.execute("DROP TABLE transfers")
    with pytest.raises(LedgerStorageError, match="no such table: transfers"):
        await ledger.history("alice")
    with pytest.raises(LedgerStorageError, match=r"not a p2e ledger \(no table transfers\)"):
        await EmbeddedLedger(path, create=False).balance("alice")


async def test_a_locked_ledger_is_still_unavailable_and_retried(
    path: Path, ledger: EmbeddedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "BUSY_TIMEOUT_MS", 50)
    with behind_the_back(path) as db:
        db.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable, match="database is locked") as locked:
            await ledger.transfer("t3", "alice", "bob", D("1"))
        db.execute("ROLLBACK")
    assert locked.value.retryable is True
    assert await ledger.transfer("t3", "alice", "bob", D("1")) is not None


# --- the ledger tools ----------------------------------------------------------------------


def _context(ledger: EmbeddedLedger) -> ToolContext:
    return ToolContext("alice", "conv-1", 1, "wf/conv-1/1/0", ToolServices(ledger))


async def test_a_ledger_tool_without_a_ledger_file_is_a_tool_error(tmp_path: Path) -> None:
    """As in a worker started before `p2e ledger init`: the model reads the one line."""
    ledger = open_ledger(LedgerSettings(), tmp_path)
    assert isinstance(ledger, EmbeddedLedger)
    with pytest.raises(ToolError) as refused:
        await check_balance(NoArgs(), _context(ledger))
    assert str(refused.value) == (
        f"no ledger at {tmp_path / 'ledger.db'}; create it with `p2e ledger init`"
    )
    with pytest.raises(ToolError, match="no ledger at"):
        await transfer_funds(TransferArgs(to_agent="bob", amount=D("1")), _context(ledger))
    assert list(tmp_path.iterdir()) == []


async def test_a_ledger_tool_on_an_emptied_file_is_a_tool_error(
    path: Path, ledger: EmbeddedLedger
) -> None:
    path.write_bytes(b"")
    with pytest.raises(ToolError, match="is empty"):
        await check_balance(NoArgs(), _context(ledger))


async def test_a_ledger_tool_on_a_locked_ledger_raises_to_be_retried(
    path: Path, ledger: EmbeddedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "BUSY_TIMEOUT_MS", 50)
    await check_balance(NoArgs(), _context(ledger))  # opened before the lock
    with behind_the_back(path) as db:
        db.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable):
            await transfer_funds(TransferArgs(to_agent="bob", amount=D("1")), _context(ledger))
        db.execute("ROLLBACK")
