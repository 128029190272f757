"""Pairwise comparison: two finished conversations' answers to one question, judged in an
order the CompareWorkflow draws, so a judge's bias for a position cancels out."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

import p2engine.evals.registry as registry
from p2engine.contract.errors import InvalidInput
from p2engine.contract.evals import Score
from p2engine.evals.registry import PairTarget, UnknownEvaluator, pairwise
from p2engine.runtime.conversations import ConversationClient, start_conversation
from p2engine.runtime.converter import DATA_CONVERTER
from p2engine.runtime.settings import Settings
from p2engine.workflows.compare import CompareWorkflow
from tests.integration.helpers import agent, unique

pytestmark = pytest.mark.usefixtures("worker")

COMPARISONS = 16


async def answered(client: Client, settings: Settings, message: str, agent_id: str) -> str:
    handle, _ = await start_conversation(
        client, settings, agent(settings, agent_id), message, name=unique("pair")
    )
    return (await handle.result()).conversation_id


async def test_a_judge_biased_to_the_first_it_sees_averages_out_over_drawn_orders(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_PAIRWISE", dict(registry._PAIRWISE))

    @pairwise("unit_first_wins", version="1", description="always prefers what it sees first")
    def first_wins(target: PairTarget) -> Score:
        return Score(value=1.0, rationale="first")

    question = "What's the weather in Paris?"
    a = await answered(client, settings, question, "agent_alpha")
    b = await answered(client, settings, question, "agent_beta")
    conversations = ConversationClient(settings, client)
    pair = await conversations.pair(a, b, "unit_first_wins")
    outcomes = [await conversations.compare(pair) for _ in range(COMPARISONS)]

    drawn = [o.swapped for o in outcomes]
    assert True in drawn and False in drawn, "both orders are drawn (1 in 2^15 to fail)"
    # Kept as A's preference, the bias shows as A winning exactly when A was shown first.
    assert [o.winner for o in outcomes] == ["b" if s else "a" for s in drawn]
    mean = sum(o.value or 0 for o in outcomes) / COMPARISONS
    assert mean == drawn.count(False) / COMPARISONS

    # The order is fixed in the history: a replay draws the same one.
    listed = [w async for w in client.list_workflows("WorkflowType = 'CompareWorkflow'")]
    histories = [await client.get_workflow_handle(w.id).fetch_history() for w in listed[:3]]
    replayer = Replayer(workflows=[CompareWorkflow], data_converter=DATA_CONVERTER)
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None


async def test_the_shipped_judge_prefers_the_answer_that_gives_the_weather(
    client: Client, settings: Settings
) -> None:
    question = "What's the weather in Paris?"
    with_tools = await answered(client, settings, question, "agent_alpha")
    handle, _ = await start_conversation(
        client, settings, agent(settings, tools=[]), question, name=unique("pair")
    )
    without = (await handle.result()).conversation_id
    conversations = ConversationClient(settings, client)

    outcome = await conversations.compare(
        await conversations.pair(with_tools, without, "better_answer")
    )
    assert (outcome.winner, outcome.value, outcome.error) == ("a", 1.0, None)
    assert outcome.usage is not None and outcome.usage.total_tokens > 0


async def test_what_cannot_be_compared_is_refused_before_anything_starts(
    client: Client, settings: Settings
) -> None:
    paris = await answered(client, settings, "What's the weather in Paris?", "agent_alpha")
    oslo = await answered(client, settings, "What's the weather in Oslo?", "agent_alpha")
    conversations = ConversationClient(settings, client)
    with pytest.raises(InvalidInput, match="answer different questions"):
        await conversations.pair(paris, oslo, "better_answer")
    with pytest.raises(UnknownEvaluator, match="'default' scores one answer"):
        await conversations.pair(paris, paris, "default")
