"""`p2e ledger` and payments from conversations, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from p2engine.ledger.embedded import EmbeddedLedger

P2E = str(Path(sys.executable).parent / "p2e")


def p2e(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [P2E, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refused command (exit 2, nothing on stdout)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    return line


def as_json(*args: str, env: dict[str, str]) -> Any:
    done = p2e(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture()
def own_ledger(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A state dir of its own, so the ledger starts empty; Temporal stays the session's."""
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    done = p2e("ledger", "init", env=env)
    assert done.returncode == 0, done.stderr
    return env


def test_a_conversation_pays_once_and_history_names_it(own_ledger: dict[str, str]) -> None:
    paid = p2e("run", "--agent", "agent_alpha", "--id", "cli-pay",
               "Transfer 25 to agent_beta for helping", env=own_ledger)  # fmt: skip
    assert paid.returncode == 0, paid.stderr
    assert "Paid agent_beta 25.00" in paid.stdout
    again = p2e("run", "--id", "cli-pay", "Transfer 25 to agent_beta for helping",
                env=own_ledger)  # fmt: skip
    assert "already exists; attaching" in again.stderr

    history = as_json("ledger", "history", "agent_alpha", env=own_ledger)
    assert [(r["amount"], r["reference"], r["reason"]) for r in history] == [
        ("25.00", "conv-cli-pay", "helping")
    ]
    assert history[0]["transfer_id"].startswith("wf:conv-cli-pay/2/0@")  # the business key
    assert as_json("ledger", "balance", "agent_alpha", env=own_ledger)["balance"] == "75.00"
    assert as_json("ledger", "balance", "agent_beta", env=own_ledger)["balance"] == "125.00"
    table = p2e("ledger", "history", "agent_alpha", env=own_ledger)
    assert "conv-cli-pay" in table.stdout


def test_init_again_leaves_existing_wallets(own_ledger: dict[str, str]) -> None:
    p2e("ledger", "transfer", "agent_alpha", "agent_beta", "10", env=own_ledger)

    again = p2e("ledger", "init", "--balance", "5", env=own_ledger)

    assert again.returncode == 0, again.stderr
    assert "already open" in again.stdout
    wallets = {w["agent"]: w["balance"] for w in as_json("ledger", "overview", env=own_ledger)
               ["wallets"]}  # fmt: skip
    assert wallets["agent_alpha"] == "90.00"
    assert wallets["agent_beta"] == "110.00"
    assert len(wallets) == 6


NOT_PLAIN = "amount must be written with digits 0-9 and at most one '.'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent_alpha", "agent_beta", "0"], "amount must be greater than 0, not 0"),
        (["agent_alpha", "agent_beta", "-5"], "amount must be greater than 0, not -5"),
        (["agent_alpha", "agent_beta", "nan"], f"{NOT_PLAIN}, not 'nan'"),
        (["agent_alpha", "agent_beta", "1e309"], f"{NOT_PLAIN}, not '1e309'"),
        (["agent_alpha", "agent_beta", "1_0"], f"{NOT_PLAIN}, not '1_0'"),
        (["agent_alpha", "agent_beta", "\u0661\u0660"], NOT_PLAIN),  # Arabic-Indic 10
        (["agent_alpha", "agent_beta", "\uff15"], NOT_PLAIN),  # fullwidth 5
        (["agent_alpha", "agent_beta", "0.001"], "amount 0.001 has more than 2 decimal places"),
        (["agent_alpha", "agent_beta", "1000.01"], "amount 1000.01 is over the per-transfer cap"),
        (["agent_alpha", "nobody", "1"], "no wallet for nobody"),
        (["agent_alpha", "agent_alpha", "1"], "agent_alpha cannot pay itself"),
        (["agent_alpha", "agent_beta", "500"], "agent_alpha has 100.00, less than 500.00"),
    ],
)
def test_a_refused_transfer_is_one_line_exit_2_and_writes_nothing(
    own_ledger: dict[str, str], args: list[str], message: str
) -> None:
    before = as_json("ledger", "metrics", env=own_ledger), p2e("ledger", "audit", "--json",
                                                                 env=own_ledger).stdout  # fmt: skip

    line = refused(p2e("ledger", "transfer", *args, env=own_ledger))

    assert line.startswith("error: ") and message in line
    after = as_json("ledger", "metrics", env=own_ledger), p2e("ledger", "audit", "--json",
                                                                env=own_ledger).stdout  # fmt: skip
    assert after == before


def test_verify_names_a_journal_row_changed_behind_the_api(own_ledger: dict[str, str]) -> None:
    p2e("ledger", "transfer", "agent_alpha", "agent_beta", "25", env=own_ledger)
    assert p2e("ledger", "verify", env=own_ledger).returncode == 0
    rows = as_json("ledger", "audit", env=own_ledger)
    transfer_row = next(r["seq"] for r in rows if r["kind"] == "transfer")

    db = sqlite3.connect(Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE journal SET amount = 1 WHERE seq = ?", (transfer_row,))
    db.execute("DROP TRIGGER journal_no_update")
    db.execute("UPDATE journal SET amount = 1 WHERE seq = ?", (transfer_row,))
    db.commit()
    db.close()

    done = p2e("ledger", "verify", env=own_ledger)
    assert done.returncode == 1
    assert f"journal row {transfer_row}" in done.stdout


def test_audit_and_metrics_report_the_journal(own_ledger: dict[str, str]) -> None:
    p2e("ledger", "transfer", "agent_alpha", "agent_beta", "7.50", "--reason", "lunch",
        env=own_ledger)  # fmt: skip

    metrics = as_json("ledger", "metrics", env=own_ledger)
    assert metrics == {
        "wallets": 6, "supply": "600.00", "volume": "7.50", "transfers": 1, "rewards": 0,
    }  # fmt: skip
    transfers = as_json("ledger", "audit", "--kind", "transfer", env=own_ledger)
    assert [(r["payer"], r["payee"], r["amount"], r["reason"]) for r in transfers] == [
        ("agent_alpha", "agent_beta", "7.50", "lunch")
    ]
    assert as_json("ledger", "audit", "--since", "2999-01-01", env=own_ledger) == []
    bad = p2e("ledger", "audit", "--since", "yesterday", env=own_ledger)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --since must be an ISO date or time, not 'yesterday'"


# --- the ledger file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["balance", "agent_alpha"],
        ["history", "agent_alpha"],
        ["transfer", "agent_alpha", "agent_beta", "1"],
        ["overview"],
        ["metrics"],
        ["audit"],
        ["verify"],
    ],
    ids=lambda args: args[0],
)
def test_a_command_without_a_ledger_is_one_line_and_creates_nothing(
    cli_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    line = refused(p2e("ledger", *args, env=env))
    assert line == f"error: no ledger at {tmp_path / 'ledger.db'}; create it with `p2e ledger init`"
    assert not (tmp_path / "ledger.db").exists()


def test_an_emptied_ledger_file_is_refused_not_made_new(own_ledger: dict[str, str]) -> None:
    """`: > ledger.db` must not turn into a fresh ledger whose verify says ok."""
    p2e("ledger", "transfer", "agent_alpha", "agent_beta", "10", env=own_ledger)
    path = Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db"
    path.write_bytes(b"")

    for args in (["init"], ["verify"], ["balance", "agent_alpha"], ["overview"]):
        line = refused(p2e("ledger", *args, env=own_ledger))
        assert line.startswith(f"error: the ledger file {path} is empty;"), line
    assert path.read_bytes() == b""


@pytest.mark.parametrize("balance", ["1e400", "1" + "0" * 40, "\u0661\u0660", "1_0", "-1", "0.001"])
def test_init_refuses_a_bad_balance_in_one_line_and_creates_nothing(
    cli_env: dict[str, str], tmp_path: Path, balance: str
) -> None:
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    line = refused(p2e("ledger", "init", f"--balance={balance}", env=env))
    assert line.startswith("error: initial balance "), line
    assert list(tmp_path.iterdir()) == []


def test_verify_names_a_receipt_changed_or_removed_behind_the_api(
    own_ledger: dict[str, str],
) -> None:
    p2e("ledger", "transfer", "agent_alpha", "agent_beta", "25", "--id", "pay-1", env=own_ledger)
    p2e("ledger", "transfer", "agent_beta", "agent_helper", "5", "--id", "pay-2", env=own_ledger)
    db = sqlite3.connect(Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db", isolation_level=None)
    db.execute(
        "UPDATE transfers SET amount = 2500000, payee = 'agent_helper'"
        " WHERE transfer_id = 'user:pay-1'"
    )
    db.close()

    done = p2e("ledger", "verify", env=own_ledger)
    assert done.returncode == 1
    assert done.stdout.strip().startswith("ledger BROKEN: transfers row user:pay-1: payee is")
    history = as_json("ledger", "history", "agent_alpha", env=own_ledger)
    assert history[0]["amount"] == "25000.00", "what history printed, and verify caught"

    db = sqlite3.connect(Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db", isolation_level=None)
    db.execute("DELETE FROM transfers WHERE transfer_id = 'user:pay-1'")
    db.close()
    done = p2e("ledger", "verify", env=own_ledger)
    assert done.returncode == 1
    assert "transfer user:pay-1 has no row in transfers" in done.stdout


def test_a_corrupt_page_is_named_by_verify_and_one_line_for_history(
    own_ledger: dict[str, str],
) -> None:
    path = Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db"

    async def pay_many() -> None:
        ledger = EmbeddedLedger(path, create=False)
        for i in range(300):
            await ledger.transfer(f"many-{i}", "agent_alpha", "agent_beta", Decimal("0.01"))
        await ledger.close()  # the last connection: the WAL is checkpointed into the file

    asyncio.run(pay_many())
    assert not path.with_name("ledger.db-wal").exists()
    with sqlite3.connect(path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'transfers'"
        ).fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xde\xad\xbe\xef" * (size // 4))

    done = p2e("ledger", "verify", env=own_ledger)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("ledger BROKEN: table transfers: "), done.stdout
    line = refused(p2e("ledger", "history", "agent_alpha", env=own_ledger))
    assert line == f"error: ledger {path} is unreadable: database disk image is malformed"


@pytest.mark.parametrize("command", [["history", "agent_alpha"], ["audit"]])
def test_limit_is_bounded(own_ledger: dict[str, str], command: list[str]) -> None:
    done = p2e("ledger", *command, "--limit", "99999999999999999999", env=own_ledger)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "--limit" in line and "10000" in line
    assert p2e("ledger", *command, "--limit", "10000", env=own_ledger).returncode == 0


def test_rewards_paid_for_scores_show_in_conversation_and_eval_show(
    own_ledger: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "rewarding.yaml"
    config.write_text(
        "rewards:\n  budget: 10\n  evaluators: [tool_succeeded]\n"
        "  thresholds: [{min: 0.5, amount: 4}]\n"
    )
    env = {**own_ledger, "P2E_CONFIG": str(config)}
    ran = p2e("run", "--id", "cli-rewarded", "--eval", "tool_succeeded", "weather in Paris",
              env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr

    shown = p2e("conversation", "show", "cli-rewarded", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "tool_succeeded 1.00 (paid 4.00)" in shown.stdout
    table = p2e("eval", "show", "cli-rewarded", env=env)
    assert table.returncode == 0, table.stderr
    assert "paid 4.00" in table.stdout and "rewards paid: 4.00 in 1 transfers" in table.stdout
    data = as_json("eval", "show", "cli-rewarded", env=env)
    (reward,) = [e["reward"] for e in data["evaluations"] if e["reward"]]
    assert (reward["status"], reward["amount"]) == ("paid", "4.00")
    history = as_json("ledger", "history", "agent_alpha", env=env)
    assert reward["transfer_id"] in [r["transfer_id"] for r in history]


def test_a_repeated_transfer_id_says_nothing_moved(own_ledger: dict[str, str]) -> None:
    first = p2e("ledger", "transfer", "agent_alpha", "agent_beta", "7", "--id", "once",
                env=own_ledger)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout.strip() == "user:once: agent_alpha -> agent_beta 7.00 (agent_alpha now 93.00)"
    )
    assert "nothing moved" not in first.stderr

    again = p2e("ledger", "transfer", "agent_alpha", "agent_beta", "7", "--id", "once",
                env=own_ledger)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "user:once: agent_alpha -> agent_beta 7.00"
    assert "recorded before, at " in again.stderr and "nothing moved now" in again.stderr
    assert as_json("ledger", "balance", "agent_alpha", env=own_ledger)["balance"] == "93.00"


def test_a_name_without_a_wallet_is_told_where_wallets_come_from(
    own_ledger: dict[str, str],
) -> None:
    done = p2e("ledger", "transfer", "agent_alpha", "nobody", "1", env=own_ledger)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: no wallet for nobody: wallets belong to the agents of agents.yml and the "
        "treasury, opened by `p2e ledger init` (again after adding an agent)"
    )
