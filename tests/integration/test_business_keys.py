"""A payment a conversation reports is a payment made: no id a user chooses can take the
business key of a later transfer or the workflow id of a later delegation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

P2E = str(Path(sys.executable).parent / "p2e")


def p2e(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [P2E, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def as_json(*args: str, env: dict[str, str]) -> Any:
    done = p2e(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture()
def own_ledger(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    done = p2e("ledger", "init", env=env)
    assert done.returncode == 0, done.stderr
    return env


def test_a_name_that_would_be_a_later_child_id_is_refused_and_the_child_pays(
    own_ledger: dict[str, str],
) -> None:
    early = p2e("run", "--agent", "agent_alpha", "--id", "coll/d2-agent_alpha",
                "transfer 5 to agent_beta for helping", env=own_ledger)  # fmt: skip
    assert early.returncode == 2
    assert early.stderr.startswith("error: --id 'coll/d2-agent_alpha' may hold only")

    delegated = p2e("run", "--agent", "agent_beta", "--id", "coll",
                    'call delegate with {"agent_id": "agent_alpha", '
                    '"message": "transfer 5 to agent_beta for helping"}',
                    env=own_ledger)  # fmt: skip
    assert delegated.returncode == 0, delegated.stderr

    history = as_json("ledger", "history", "agent_alpha", env=own_ledger)
    assert [(r["payee"], r["amount"], r["reference"]) for r in history] == [
        ("agent_beta", "5.00", "conv-coll/d2-agent_alpha")
    ]
    assert history[0]["transfer_id"].startswith("wf:conv-coll/d2-agent_alpha/2/0@")
    assert as_json("ledger", "balance", "agent_beta", env=own_ledger)["balance"] == "105.00"


def test_a_user_transfer_id_never_answers_for_a_conversation_transfer(
    own_ledger: dict[str, str],
) -> None:
    by_hand = p2e("ledger", "transfer", "--id", "pre-2-0", "agent_alpha", "agent_beta", "5",
                  env=own_ledger)  # fmt: skip
    assert by_hand.returncode == 0, by_hand.stderr
    assert by_hand.stdout.startswith("user:pre-2-0: agent_alpha -> agent_beta 5.00")

    paid = p2e("run", "--agent", "agent_alpha", "--id", "pre",
               "transfer 5 to agent_beta for helping", env=own_ledger)  # fmt: skip
    assert paid.returncode == 0, paid.stderr
    assert "Paid agent_beta 5.00" in paid.stdout

    history = as_json("ledger", "history", "agent_alpha", env=own_ledger)
    ids = [r["transfer_id"] for r in history]
    assert len(ids) == 2
    assert ids[1] == "user:pre-2-0"
    assert ids[0].startswith("wf:conv-pre/2/0@")
    assert as_json("ledger", "balance", "agent_alpha", env=own_ledger)["balance"] == "90.00"

    again = p2e("ledger", "transfer", "--id", "pre-2-0", "agent_alpha", "agent_beta", "5",
                env=own_ledger)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert as_json("ledger", "balance", "agent_alpha", env=own_ledger)["balance"] == "90.00"
