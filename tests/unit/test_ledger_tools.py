"""The ledger tools run as the worker runs them: ToolActivities.run_tool with a ToolInput.

The payer is always ToolInput.agent_id and the transfer id ToolInput.call_key; nothing the
model writes in the arguments can change either."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from p2engine.activities.tools import ToolActivities
from p2engine.agents.tools import get_tool
from p2engine.agents.tools.registry import ToolServices
from p2engine.contract.ids import business_key
from p2engine.contract.models import ToolCallRequest, ToolInput, ToolOutcome
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.store.artifacts import LocalArtifactStore
from p2engine.store.tool_cache import SqliteToolCache

D = Decimal
CONVERSATION = "conv-42"


@pytest.fixture()
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    ledger = EmbeddedLedger(tmp_path / "ledger.db", max_transfer=D("1000"))
    await ledger.open_wallet("alice", D("100"))
    await ledger.open_wallet("bob", D("20"))
    await ledger.open_wallet("carol", D("50"))
    yield ledger
    await ledger.close()


class Runner:
    """Runs tool calls through the run_tool activity and reads back their stored results."""

    def __init__(self, tmp_path: Path, services: ToolServices) -> None:
        self.store = LocalArtifactStore(tmp_path / "artifacts")
        self.activities = ToolActivities(
            self.store, SqliteToolCache(tmp_path / "tool-cache.db"), services
        )

    def input(
        self, name: str, arguments: dict[str, Any] | str, agent: str = "alice", key: str = ""
    ) -> ToolInput:
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return ToolInput(
            conversation_id=CONVERSATION,
            agent_id=agent,
            step=3,
            call=ToolCallRequest(id="call_1", name=name, arguments=raw),
            call_key=key or f"{CONVERSATION}/3/{name}",
        )

    async def run(self, inp: ToolInput) -> tuple[str, Any]:
        outcome: ToolOutcome = await self.activities.run_tool(inp)
        assert outcome.result_ref is not None
        return outcome.status, json.loads(await self.store.get_text(outcome.result_ref))

    async def call(
        self, name: str, arguments: dict[str, Any] | str, agent: str = "alice", key: str = ""
    ) -> tuple[str, Any]:
        return await self.run(self.input(name, arguments, agent, key))


@pytest.fixture()
def runner(tmp_path: Path, ledger: EmbeddedLedger) -> Runner:
    return Runner(tmp_path, ToolServices(ledger=ledger))


async def balances(ledger: EmbeddedLedger) -> dict[str, Decimal]:
    return {w.agent: w.balance for w in await ledger.overview()}


START = {"alice": D("100.00"), "bob": D("20.00"), "carol": D("50.00")}


# --- transfer_funds -----------------------------------------------------------------------


async def test_transfer_funds_pays_from_the_acting_agent(
    runner: Runner, ledger: EmbeddedLedger
) -> None:
    status, result = await runner.call(
        "transfer_funds",
        {"to_agent": "bob", "amount": "12.5", "reason": "for the data"},
        agent="alice",
        key="wf-1/3/0",
    )
    assert status == "ok", result
    assert result["from"] == "alice" and result["to"] == "bob"
    assert (result["amount"], result["balance"]) == ("12.50", "87.50")
    assert (result["kind"], result["reason"]) == ("transfer", "for the data")
    assert result["transfer_id"] == "wf-1/3/0"
    receipt = await ledger.get_transfer("wf-1/3/0")
    assert receipt is not None
    assert (receipt.payer, receipt.transfer_id) == ("alice", "wf-1/3/0")
    assert receipt.reference == CONVERSATION
    assert await balances(ledger) == {**START, "alice": D("87.50"), "bob": D("32.50")}


@pytest.mark.parametrize("payer_key", ["from_agent", "payer", "agent_id"])
async def test_a_payer_in_the_arguments_is_never_used(
    runner: Runner, ledger: EmbeddedLedger, payer_key: str
) -> None:
    status, result = await runner.call(
        "transfer_funds", {"to_agent": "bob", "amount": "5", payer_key: "carol"}, agent="alice"
    )
    # Ignored or refused; either way carol pays nothing.
    if status == "ok":
        assert result["from"] == "alice"
        assert await balances(ledger) == {**START, "alice": D("95.00"), "bob": D("25.00")}
    else:
        assert await balances(ledger) == START
    assert (await balances(ledger))["carol"] == D("50.00")
    assert [r.payer for r in await ledger.history("carol")] == []


async def test_the_acting_agent_pays_even_when_it_is_named_as_another(
    runner: Runner, ledger: EmbeddedLedger
) -> None:
    """bob acting: a request to pay alice comes out of bob's wallet."""
    status, result = await runner.call(
        "transfer_funds", {"to_agent": "alice", "amount": "3", "from_agent": "alice"}, agent="bob"
    )
    assert status == "ok", result
    assert result["from"] == "bob"
    assert await balances(ledger) == {**START, "alice": D("103.00"), "bob": D("17.00")}


async def test_the_transfer_schema_has_no_payer_argument() -> None:
    for name in ("transfer_funds", "reward_agent"):
        properties = get_tool(name).schema()["function"]["parameters"]["properties"]
        assert not {"from_agent", "payer", "from"} & set(properties), properties


async def test_a_retried_call_pays_once(runner: Runner, ledger: EmbeddedLedger) -> None:
    inp = runner.input("transfer_funds", {"to_agent": "bob", "amount": "40"}, key="wf-2/5/1")
    first = await runner.run(inp)
    again = await runner.run(inp)
    assert first[0] == again[0] == "ok"
    assert again[1]["transfer_id"] == first[1]["transfer_id"] == "wf-2/5/1"
    assert again[1]["at"] == first[1]["at"]
    assert await balances(ledger) == {**START, "alice": D("60.00"), "bob": D("60.00")}
    assert len(await ledger.history("alice")) == 1


async def test_without_a_call_key_the_call_id_names_the_transfer_as_a_workflow_key(
    runner: Runner, ledger: EmbeddedLedger
) -> None:
    inp = runner.input("transfer_funds", {"to_agent": "bob", "amount": "1"})
    inp = inp.model_copy(update={"call_key": ""})
    status, result = await runner.run(inp)
    assert status == "ok", result
    assert result["transfer_id"] == business_key(CONVERSATION, "", 3, "call_1")
    assert result["transfer_id"].startswith("wf:")
    await runner.run(inp)
    assert await ledger.balance("alice") == D("99.00")


@pytest.mark.parametrize(
    ("arguments", "mentions"),
    [
        ('{"to_agent": "bob", "amount": 0}', "greater than 0"),
        ('{"to_agent": "bob", "amount": "0"}', "greater than 0"),
        ('{"to_agent": "bob", "amount": -5}', "greater than 0"),
        ('{"to_agent": "bob", "amount": 0.001}', "2 decimal places"),
        ('{"to_agent": "bob", "amount": "0.001"}', "2 decimal places"),
        ('{"to_agent": "bob", "amount": 1000.01}', "cap"),
        ('{"to_agent": "bob", "amount": "nan"}', "amount"),
        ('{"to_agent": "bob", "amount": 1e309}', "amount"),
        ('{"to_agent": "bob", "amount": "1e309"}', "digits 0-9"),
        ('{"to_agent": "bob", "amount": "lots"}', "amount"),
        ('{"to_agent": "bob"}', "amount"),
        ('{"to_agent": "", "amount": 1}', "to_agent"),
        ("not json", "invalid arguments"),
    ],
)
async def test_bad_amounts_are_an_error_outcome_and_move_nothing(
    runner: Runner, ledger: EmbeddedLedger, arguments: str, mentions: str
) -> None:
    status, result = await runner.call("transfer_funds", arguments, key="wf-3/1/0")
    assert status == "error"
    assert isinstance(result["error"], str) and mentions in result["error"], result
    assert await balances(ledger) == START
    assert await ledger.get_transfer("wf-3/1/0") is None


@pytest.mark.parametrize(
    ("arguments", "mentions"),
    [
        ({"to_agent": "nobody", "amount": "1"}, "nobody"),
        ({"to_agent": "bob", "amount": "100.01"}, "alice has 100.00"),
        ({"to_agent": "alice", "amount": "1"}, "cannot pay itself"),
    ],
)
async def test_ledger_refusals_are_an_error_outcome(
    runner: Runner, ledger: EmbeddedLedger, arguments: dict[str, Any], mentions: str
) -> None:
    status, result = await runner.call("transfer_funds", arguments, key="wf-4/1/0")
    assert status == "error"
    assert mentions in result["error"], result
    assert await balances(ledger) == START
    assert await ledger.get_transfer("wf-4/1/0") is None


async def test_a_reused_call_key_with_other_details_is_an_error(
    runner: Runner, ledger: EmbeddedLedger
) -> None:
    await runner.call("transfer_funds", {"to_agent": "bob", "amount": "1"}, key="wf-5/1/0")
    status, result = await runner.call(
        "transfer_funds", {"to_agent": "bob", "amount": "2"}, key="wf-5/1/0"
    )
    assert status == "error"
    assert "wf-5/1/0" in result["error"]
    assert await ledger.balance("alice") == D("99.00")


# --- reward_agent -------------------------------------------------------------------------


async def test_reward_agent_is_a_reward_with_a_reason_prefix(
    runner: Runner, ledger: EmbeddedLedger
) -> None:
    status, result = await runner.call(
        "reward_agent", {"agent_id": "bob", "amount": "2.5", "reason": "nice"}, key="wf-6/2/0"
    )
    assert status == "ok", result
    assert (result["kind"], result["reason"]) == ("reward", "Reward: nice")
    assert (result["from"], result["to"], result["amount"]) == ("alice", "bob", "2.50")
    receipt = await ledger.get_transfer("wf-6/2/0")
    assert receipt is not None
    assert (receipt.kind, receipt.reason, receipt.payer) == ("reward", "Reward: nice", "alice")
    status, result = await runner.call(
        "reward_agent", {"agent_id": "carol", "amount": 1}, key="wf-6/2/1"
    )
    assert result["reason"] == "Reward: Good work!"
    metrics = await ledger.metrics()
    assert (metrics.transfers, metrics.rewards) == (0, 2)


async def test_reward_agent_refusals_are_errors(runner: Runner, ledger: EmbeddedLedger) -> None:
    for arguments in (
        {"agent_id": "bob", "amount": "0"},
        {"agent_id": "bob", "amount": "500"},
        {"agent_id": "nobody", "amount": "1"},
    ):
        status, _ = await runner.call("reward_agent", arguments, key="wf-7/1/0")
        assert status == "error"
    assert await balances(ledger) == START


# --- reads --------------------------------------------------------------------------------


async def test_check_balance_is_the_acting_agents(runner: Runner) -> None:
    assert await runner.call("check_balance", {}, agent="bob") == (
        "ok",
        {"agent": "bob", "balance": "20.00"},
    )
    await runner.call("transfer_funds", {"to_agent": "bob", "amount": "0.3"}, key="wf-8/1/0")
    status, result = await runner.call("check_balance", {"agent": "carol"}, agent="alice")
    assert (status, result) == ("ok", {"agent": "alice", "balance": "99.70"})
    status, result = await runner.call("check_balance", {}, agent="nobody")
    assert status == "error" and "nobody" in result["error"]


async def test_transaction_history_is_the_acting_agents(runner: Runner) -> None:
    await runner.call("transfer_funds", {"to_agent": "bob", "amount": "1"}, key="k/1")
    await runner.call("transfer_funds", {"to_agent": "alice", "amount": "2"}, "bob", key="k/2")
    await runner.call("transfer_funds", {"to_agent": "bob", "amount": "3"}, "carol", key="k/3")
    status, result = await runner.call("transaction_history", {}, agent="alice")
    assert status == "ok", result
    assert result["agent"] == "alice"
    assert [t["transfer_id"] for t in result["transfers"]] == ["k/2", "k/1"]
    status, result = await runner.call("transaction_history", {"limit": 2}, agent="bob")
    assert [t["transfer_id"] for t in result["transfers"]] == ["k/3", "k/2"]
    status, result = await runner.call("transaction_history", {"limit": 0}, agent="bob")
    assert status == "error"


# --- no ledger ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("transfer_funds", {"to_agent": "bob", "amount": "1"}),
        ("reward_agent", {"agent_id": "bob", "amount": "1"}),
        ("check_balance", {}),
        ("transaction_history", {}),
    ],
)
async def test_without_a_ledger_every_ledger_tool_is_an_error(
    tmp_path: Path, name: str, arguments: dict[str, Any]
) -> None:
    status, result = await Runner(tmp_path, ToolServices()).call(name, arguments)
    assert status == "error"
    assert "no ledger" in result["error"]
