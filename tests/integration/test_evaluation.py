"""Evaluation inside the run: evaluators score steps beside the conversation, the scores
land on the stack, in the result and in P2eScore, and an evaluator that cannot score never
fails the conversation."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from temporalio.client import Client

import p2engine.evals.registry as registry
from p2engine.contract.agent import AgentEval, AgentLimits
from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import Evaluation, RewardPolicy, Score, Threshold
from p2engine.contract.names import SCORES_MEMO
from p2engine.contract.states import FinishReason, State
from p2engine.evals.registry import EvalTarget, EvaluationError, evaluator
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.runtime.conversations import ConversationClient, start_conversation
from p2engine.runtime.settings import ConversationSettings, Settings
from p2engine.store import open_store
from p2engine.workflows import search
from tests.integration.helpers import activity_attempts, agent, local_activities, unique

pytestmark = pytest.mark.usefixtures("worker")


async def test_evaluators_score_steps_tool_results_and_the_answer(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client,
        settings,
        agent(settings),
        "What's the weather in Paris?",
        name=unique("scored"),
        evaluators=["within_tokens", "tool_succeeded", "gives_temperature"],
    )
    result = await handle.result()

    scored = {
        entry.kind: [(e.evaluator_id, e.value) for e in entry.evaluations]
        for entry in result.stack
        if entry.evaluations
    }
    assert scored == {
        State.TOOL_CALL: [("within_tokens", 1.0)],
        State.TOOL_RESULT: [("tool_succeeded", 1.0)],
        State.ASSISTANT_MESSAGE: [("within_tokens", 1.0), ("gives_temperature", 1.0)],
    }
    assert result.score == 1.0
    # Rules are quick: they score inside the workflow task that asks, as local activities
    # (one per model step, its tool results with it), never as tasks of their own.
    assert "evaluate" not in await activity_attempts(handle)
    assert await local_activities(handle, "evaluate") == ["evaluate", "evaluate"]
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(search.SCORE) == 1.0
    # Each score is a record in the store, linked to the node it scores.
    final = result.stack[-2]
    store = open_store(settings)
    outcome = final.evaluations[-1]
    assert outcome.ref is not None
    record = Evaluation.model_validate_json(await store.get_text(outcome.ref))
    assert (record.target, record.evaluator_id, record.version) == (
        final.ref, "gives_temperature", "1"
    )  # fmt: skip
    assert record.score == Score(value=1.0, rationale="matches '15°C'")


async def test_the_default_evaluator_grades_every_step_with_the_judge(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client,
        settings,
        agent(settings),
        "What's the weather in Paris?",
        name=unique("judged"),
        evaluators=["default"],
    )
    result = await handle.result()

    graded = [
        (e.kind, round(e.evaluations[0].value or 0, 3)) for e in result.stack if e.evaluations
    ]
    # The scripted judge (agents/scripted.py), weighed 3 to 1 against the token budget:
    # the call is relevant on 2 of 3 words and has no digit, the answer 1 of 3 words.
    assert graded == [(State.TOOL_CALL, 0.75), (State.ASSISTANT_MESSAGE, 0.875)]
    # A judge calls a model: its evaluations are activities, beside the conversation.
    assert (await activity_attempts(handle))["evaluate"] == [1, 1]
    assert await local_activities(handle, "evaluate") == []
    # What the judge spent is kept apart from what the agent spent.
    spent = [o.usage for e in result.stack for o in e.evaluations]
    assert all(u is not None and u.total_tokens > 0 for u in spent)
    assert result.eval_usage.total_tokens == sum(u.total_tokens for u in spent if u)
    unjudged, _ = await start_conversation(
        client, settings, agent(settings), "What's the weather in Paris?", name=unique("plain")
    )
    plain = await unjudged.result()
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens
    )  # fmt: skip
    assert plain.eval_usage.total_tokens == 0
    assert result.score == pytest.approx(0.8125, abs=1e-3)
    answer = result.stack[-2]
    ref = answer.evaluations[0].ref
    assert ref is not None
    record = Evaluation.model_validate_json(await open_store(settings).get_text(ref))
    assert record.score is not None and record.score.parts == {
        "helpful": 0.833,
        "within_tokens": 1.0,
    }


async def test_a_judge_that_answers_garbage_is_asked_again_then_recorded_as_an_error(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client,
        settings,
        agent(settings, "agent_beta"),
        "Repeat after me: simulate judge garbage",
        name=unique("garbage"),
        evaluators=["helpful"],
    )
    result = await handle.result()

    assert result.reason is FinishReason.DONE
    [outcome] = [o for e in result.stack for o in e.evaluations]
    assert outcome.value is None
    assert outcome.error == (
        "judge scripted/judge gave no valid verdict in 3 attempts: not a JSON object"
    )
    assert result.score is None


async def test_an_agents_own_evaluators_and_a_failing_one(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_EVALUATORS", dict(registry._EVALUATORS))

    @evaluator("unit_riddle", version="1", description="never scores", trigger="final")
    def riddle(target: EvalTarget) -> Score:
        raise EvaluationError("the judge answered in riddles")

    spec = agent(settings, eval=AgentEval(evaluators=["unit_riddle", "gives_temperature"]))
    handle, _ = await start_conversation(
        client, settings, spec, "What's the weather in Oslo?", name=unique("riddle")
    )
    result = await handle.result()

    assert result.reason is FinishReason.DONE
    [answer] = [e for e in result.stack if e.kind is State.ASSISTANT_MESSAGE]
    outcomes = {e.evaluator_id: (e.value, e.error) for e in answer.evaluations}
    assert outcomes == {
        "unit_riddle": (None, "the judge answered in riddles"),
        "gives_temperature": (1.0, None),
    }
    assert result.score == 1.0  # an error is no score, not a zero


async def test_an_unknown_evaluator_is_refused_before_anything_starts(
    client: Client, settings: Settings
) -> None:
    with pytest.raises(ConfigError, match="--eval: unknown evaluator 'nope'; known evaluators"):
        await start_conversation(
            client, settings, agent(settings), "hi", name=unique("nope"), evaluators=["nope"]
        )
    spec = agent(settings, eval=AgentEval(evaluators=["nope"]))
    with pytest.raises(ConfigError, match="agent 'agent_alpha': eval: unknown evaluator 'nope'"):
        await start_conversation(client, settings, spec, "hi", name=unique("nope"))


async def test_scores_survive_continue_as_new(client: Client, settings: Settings) -> None:
    short = settings.model_copy(
        update={"conversation": ConversationSettings(continue_as_new_events=50)}
    )
    handle, _ = await start_conversation(
        client,
        short,
        agent(settings, limits=AgentLimits(max_steps=40)),
        "weather in Paris, Rome, Oslo, Lima, Cairo and Dubai",
        name=unique("scored-can"),
        evaluators=["tool_succeeded", "within_tokens"],
    )
    result = await handle.result()

    assert result.reason is FinishReason.DONE
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 2  # it continued as new at least once
    results = [e for e in result.stack if e.kind is State.TOOL_RESULT]
    assert len(results) == 6
    assert all([o.evaluator_id for o in e.evaluations] == ["tool_succeeded"] for e in results)
    assert result.score == 1.0


async def test_top_scored_ranks_conversations_by_their_score_from_visibility(
    client: Client, settings: Settings
) -> None:
    spec = agent(settings).model_copy(update={"id": unique("ranked").replace("-", "_")})
    ids = {}
    for message in ("hello there", "What's the weather in Paris?"):
        handle, _ = await start_conversation(
            client, settings, spec, message, name=unique("rank"), evaluators=["gives_temperature"]
        )
        ids[message] = (await handle.result()).conversation_id
    conversations = ConversationClient(settings, client)

    ranked = []
    for _ in range(100):  # visibility catches up a moment after the run closes
        ranked = await conversations.top_scored(10, agent=spec.id)
        if len(ranked) == 2 and all(c.score is not None for c in ranked):
            break
        await asyncio.sleep(0.1)
    assert [(c.id, c.score) for c in ranked] == [
        (ids["What's the weather in Paris?"], 1.0),
        (ids["hello there"], 0.0),
    ]
    assert [c.id for c in await conversations.top_scored(1, agent=spec.id)] == [ranked[0].id]


async def test_ranking_by_one_evaluator_reads_the_means_closed_conversations_keep_in_memo(
    client: Client, settings: Settings
) -> None:
    spec = agent(settings).model_copy(update={"id": unique("by_one").replace("-", "_")})
    ids = {}
    for message in ("hello there", "What's the weather in Paris?"):
        handle, _ = await start_conversation(
            client,
            settings,
            spec,
            message,
            name=unique("rank"),
            evaluators=["gives_temperature", "within_tokens"],
        )
        ids[message] = (await handle.result()).conversation_id
        memo = await (await handle.describe()).memo()
        assert memo[SCORES_MEMO] == {
            "gives_temperature": 1.0 if "Paris" in message else 0.0,
            "within_tokens": 1.0,
        }
    conversations = ConversationClient(settings, client)

    async def ranked(evaluator: str) -> list[tuple[str, float | None]]:
        for _ in range(100):  # visibility catches up a moment after the run closes
            found = await conversations.top_scored(10, agent=spec.id, evaluator=evaluator)
            if len(found) == 2:
                break
            await asyncio.sleep(0.1)
        return [(c.id, c.scores.get(evaluator)) for c in found]

    paris, hello = ids["What's the weather in Paris?"], ids["hello there"]
    assert await ranked("gives_temperature") == [(paris, 1.0), (hello, 0.0)]
    assert await ranked("within_tokens") == sorted([(paris, 1.0), (hello, 1.0)])
    assert await conversations.top_scored(10, agent=spec.id, evaluator="helpful") == []


async def test_scores_pay_the_agent_once_until_the_budget_is_spent(
    client: Client, settings: Settings
) -> None:
    ledger = EmbeddedLedger(settings.state_dir / "ledger.db", settings.ledger.max_transfer)
    for wallet in ("agent_alpha", "treasurer"):
        await ledger.open_wallet(wallet, Decimal("100"))
    before = await ledger.balance("agent_alpha")
    policy = RewardPolicy(
        budget=Decimal("7"),
        thresholds=[
            Threshold(min=0.5, amount=Decimal("5")),
            Threshold(min=0.9, amount=Decimal("6")),
        ],
        evaluators=["tool_succeeded", "gives_temperature"],
    )
    handle, _ = await start_conversation(
        client,
        settings.model_copy(update={"rewards": policy}),
        agent(settings),
        "What's the weather in Paris?",
        name=unique("rewarded"),
        evaluators=["tool_succeeded", "gives_temperature", "within_tokens"],
    )
    result = await handle.result()

    rewards = {o.evaluator_id: o.reward for e in result.stack for o in e.evaluations}
    paid = rewards["tool_succeeded"]
    assert paid is not None and (paid.status, paid.amount) == ("paid", Decimal("6"))
    skipped = rewards["gives_temperature"]
    assert skipped is not None and skipped.status == "skipped"
    assert skipped.reason == "budget spent: 6 of 7 paid, 6 more would exceed it"
    assert rewards["within_tokens"] is None  # not an evaluator the policy pays for
    assert await ledger.balance("agent_alpha") == before + 6
    [receipt] = [r for r in await ledger.history("agent_alpha") if r.reference == handle.id]
    assert (receipt.kind, receipt.payer, receipt.transfer_id) == (
        "reward", "treasurer", paid.transfer_id
    )  # fmt: skip
    assert receipt.reason == "tool_succeeded scored 1.00 on step 2"


async def test_a_reward_policy_paying_from_an_unknown_wallet_starts_nothing(
    client: Client, settings: Settings
) -> None:
    policy = RewardPolicy(payer="nobody", budget=Decimal("1"), per_point=Decimal("1"))
    name = unique("unpaid")
    with pytest.raises(ConfigError, match="rewards: the payer wallet 'nobody' cannot pay"):
        await start_conversation(
            client,
            settings.model_copy(update={"rewards": policy}),
            agent(settings),
            "hi",
            name=name,
            evaluators=["within_tokens"],
        )
    assert not [w async for w in client.list_workflows(f"WorkflowId = 'conv-{name}'")]
