"""A payment a conversation reports is a payment made: no id a user chooses can take the
business key of a later transfer or the workflow id of a later delegation."""

from __future__ import annotations

from tests.integration.test_ledger_cli import as_json, own_ledger, p2e

__all__ = ["own_ledger"]  # the fixture: a state dir of its own with an opened ledger


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
