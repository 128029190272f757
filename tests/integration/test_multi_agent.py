"""Multi-agent conversations end to end: delegation as child workflows, usage roll-up,
cycle and depth refusals, the tool allowlist, argument correction, duplicate-call policies,
the tool cache, budgets and continue-as-new."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from p2engine.agents import scripted_provider
from p2engine.agents.config import ScriptedModelSettings
from p2engine.agents.tools import registry
from p2engine.agents.tools.weather import WEATHER
from p2engine.contract.agent import DedupPolicy
from p2engine.contract.models import ConversationResult, StackEntry, ToolStatus
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import ConversationSettings, Settings
from p2engine.runtime.worker import build_worker
from p2engine.store import open_store
from p2engine.workflows import search
from tests.conftest import queue_settings
from tests.integration.helpers import (
    activity_attempts,
    agent,
    conversation,
    converse,
    kinds,
    local_runs,
    status,
    unique,
    workflow_exists,
)

pytestmark = pytest.mark.usefixtures("worker")


def only(stack: list[StackEntry], kind: State) -> StackEntry:
    [entry] = [e for e in stack if e.kind is kind]
    return entry


def of_kind(stack: list[StackEntry], kind: State) -> list[StackEntry]:
    return [e for e in stack if e.kind is kind]


async def child_result(client: Client, child_id: str) -> ConversationResult:
    return await conversation(client, child_id).result()


# --- delegation ---------------------------------------------------------------------------


async def test_delegation_runs_the_other_agent_as_a_child_workflow(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        "Delegate to agent_helper: what's the weather in Tokyo?",
        "delegate",
    )

    assert result.reason is FinishReason.DONE
    assert kinds(result.stack) == [
        State.USER_MESSAGE,
        State.AGENT_CALL,
        State.AGENT_RESULT,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
    call = only(result.stack, State.AGENT_CALL)
    assert call.tool_name == "delegate"
    assert call.preview == "-> agent_helper: what's the weather in Tokyo?"
    agent_result = only(result.stack, State.AGENT_RESULT)
    assert agent_result.status == "ok"
    assert agent_result.child_id == f"{handle.id}/d2-agent_helper"
    assert agent_result.preview.startswith("agent_helper: In Tokyo it is 18°C")
    assert result.reply_ref is not None
    reply = (await open_store(settings).get_node(result.reply_ref)).text or ""
    assert "agent_helper says" in reply and "Tokyo" in reply
    assert "agent_helper says" in result.reply_preview and "Tokyo" in result.reply_preview

    child = await client.get_workflow_handle(agent_result.child_id).describe()
    assert child.typed_search_attributes.get(search.AGENT) == "agent_helper"
    assert child.parent_id == handle.id
    assert child.parent_run_id == handle.result_run_id
    assert child.status == WorkflowExecutionStatus.COMPLETED
    helper = await child_result(client, agent_result.child_id)
    assert helper.agent_id == "agent_helper"
    assert helper.reason is FinishReason.DONE
    assert kinds(helper.stack) == [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
    assert helper.stack[0].preview == "what's the weather in Tokyo?"


async def test_child_usage_rolls_up_into_the_parent(client: Client, settings: Settings) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        "Delegate to agent_helper: what's the weather in Tokyo?",
        "rollup",
    )

    counted = [e.usage for e in result.stack if e.usage is not None]
    # Two model steps of the parent (delegate call, final answer) and the child's total.
    assert [e.kind for e in result.stack if e.usage is not None] == [
        State.AGENT_CALL,
        State.AGENT_RESULT,
        State.ASSISTANT_MESSAGE,
    ]
    total = sum(counted, Usage())
    assert result.usage.total_tokens == total.total_tokens
    assert result.usage.prompt_tokens == total.prompt_tokens
    assert result.usage.cost_usd == pytest.approx(total.cost_usd)

    agent_result = only(result.stack, State.AGENT_RESULT)
    assert agent_result.child_id is not None
    child = await child_result(client, agent_result.child_id)
    assert child.usage.total_tokens > 0
    assert agent_result.usage == child.usage
    own = [
        e.usage for e in result.stack if e.usage is not None and e.kind is not State.AGENT_RESULT
    ]
    assert result.usage.total_tokens == sum(u.total_tokens for u in own) + child.usage.total_tokens
    # The state query reports the same rolled-up usage.
    assert (await status(handle)).usage == result.usage


async def test_nested_delegation_runs_a_grandchild(client: Client, settings: Settings) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        "delegate to agent_helper: delegate to child: weather in Oslo",
        "nested",
    )

    assert result.reason is FinishReason.DONE
    assert "Oslo" in result.reply_preview
    helper_id = f"{handle.id}/d2-agent_helper"
    grandchild_id = f"{helper_id}/d2-child"
    assert only(result.stack, State.AGENT_RESULT).child_id == helper_id
    helper = await child_result(client, helper_id)
    assert only(helper.stack, State.AGENT_RESULT).child_id == grandchild_id
    grandchild = await client.get_workflow_handle(grandchild_id).describe()
    assert grandchild.parent_id == helper_id
    assert grandchild.typed_search_attributes.get(search.AGENT) == "child"
    junior = await child_result(client, grandchild_id)
    assert junior.reason is FinishReason.DONE
    assert "In Oslo it is 4°C" in junior.reply_preview


async def test_delegation_cycle_is_refused(client: Client, settings: Settings) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        "delegate to agent_beta: delegate to agent_alpha: hi",
        "cycle",
    )

    assert result.reason is FinishReason.DONE
    beta_id = f"{handle.id}/d2-agent_beta"
    beta = await child_result(client, beta_id)
    refused = only(beta.stack, State.AGENT_RESULT)
    assert refused.status == "error"
    assert "cycle" in refused.preview
    assert "agent_alpha -> agent_beta -> agent_alpha" in refused.preview
    assert refused.child_id is None
    assert not await workflow_exists(client, f"{beta_id}/d2-agent_alpha")


async def test_delegation_deeper_than_the_limit_is_refused(
    client: Client, settings: Settings
) -> None:
    shallow = agent(settings, limits={"max_steps": 20, "max_delegation_depth": 0})
    handle, result = await converse(
        client, settings, shallow, "delegate to agent_helper: weather in Tokyo", "depth"
    )

    assert result.reason is FinishReason.DONE
    refused = only(result.stack, State.AGENT_RESULT)
    assert refused.status == "error"
    assert "max_delegation_depth" in refused.preview
    assert refused.child_id is None
    assert refused.usage is None
    assert not await workflow_exists(client, f"{handle.id}/d2-agent_helper")
    assert "max_delegation_depth" in result.reply_preview


# --- the tool allowlist and argument correction ---------------------------------------------


async def test_tool_the_agent_lacks_is_refused_without_running(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings, "agent_beta"),
        'call get_weather with {"city": "Paris"}',
        "allowlist",
    )

    assert result.reason is FinishReason.DONE
    refused = only(result.stack, State.TOOL_RESULT)
    assert refused.status == "error"
    assert "not allowed" in refused.preview and "agent_beta" in refused.preview
    assert "run_tool" not in await activity_attempts(handle)


async def test_malformed_arguments_are_fed_back_and_corrected(
    client: Client, settings: Settings
) -> None:
    _handle, result = await converse(
        client, settings, agent(settings), 'call get_weather with {"town": "Paris"}', "malformed"
    )

    assert result.reason is FinishReason.DONE
    calls = of_kind(result.stack, State.TOOL_CALL)
    assert [c.preview for c in calls] == [
        'get_weather({"town": "Paris"})',
        'get_weather({"city": "Paris"})',
    ]
    first, second = of_kind(result.stack, State.TOOL_RESULT)
    assert first.status == "error" and "invalid arguments" in first.preview
    assert second.status == "ok"
    assert "Paris" in result.reply_preview
    assert "invalid arguments" not in result.reply_preview


# --- duplicate side-effecting calls ---------------------------------------------------------


class TallyArgs(BaseModel):
    x: int


@dataclass
class Tally:
    name: str
    calls: list[int] = field(default_factory=list)


@pytest.fixture()
def tally() -> Iterator[Tally]:
    """A side-effecting tool that counts its runs, registered for one test."""
    counter = Tally(unique("tally").replace("-", "_"))

    @registry.tool(counter.name, "Counts how often it runs.", TallyArgs)
    def _run(args: TallyArgs) -> dict[str, int]:
        counter.calls.append(args.x)
        return {"count": len(counter.calls)}

    try:
        yield counter
    finally:
        registry._TOOLS.pop(counter.name, None)


@pytest.mark.parametrize(
    ("policy", "statuses", "runs", "penalised"),
    [
        ("strict", ["ok", "skipped"], 1, [False, False]),
        ("penalty", ["ok", "ok"], 2, [False, True]),
        ("none", ["ok", "ok"], 2, [False, False]),
    ],
)
async def test_repeated_side_effecting_call_follows_the_dedup_policy(
    client: Client,
    settings: Settings,
    tally: Tally,
    policy: DedupPolicy,
    statuses: list[ToolStatus],
    runs: int,
    penalised: list[bool],
) -> None:
    spec = agent(settings, tools=[tally.name], dedup=policy)
    handle, result = await converse(
        client, settings, spec, f'call {tally.name} 2 times with {{"x": 1}}', f"dedup-{policy}"
    )

    assert result.reason is FinishReason.DONE
    tool_results = of_kind(result.stack, State.TOOL_RESULT)
    assert [r.status for r in tool_results] == statuses
    assert [r.penalty for r in tool_results] == penalised
    assert result.penalties == sum(penalised)
    assert len(tally.calls) == runs
    assert (await activity_attempts(handle))["run_tool"] == [1] * runs
    if policy == "strict":
        assert "already made at step 2" in tool_results[1].preview


# --- the tool cache -------------------------------------------------------------------------


async def test_second_conversation_is_served_from_the_tool_cache(
    client: Client, settings: Settings
) -> None:
    # No other test asks about Lisbon, so the first lookup is never cached.
    cached = []
    for n in range(2):
        handle, _ = await start_conversation(
            client, settings, agent(settings), "weather in Lisbon", name=unique(f"cache{n}")
        )
        result = await handle.result()
        assert result.reason is FinishReason.DONE
        assert "In Lisbon it is 19°C" in result.reply_preview
        tool_result = only(result.stack, State.TOOL_RESULT)
        assert tool_result.status == "ok"
        cached.append(tool_result.cached)

    assert cached == [False, True]


# --- budgets --------------------------------------------------------------------------------


async def test_budget_ends_the_conversation(client: Client, settings: Settings) -> None:
    pricey = queue_settings(
        settings.model_copy(update={"scripted": ScriptedModelSettings(cost_per_1k_tokens=1000)})
    )
    spec = agent(settings, limits={"max_steps": 20, "max_cost": 0.0001})
    try:
        async with build_worker(client, pricey):
            handle, _ = await start_conversation(
                client, pricey, spec, "weather in Paris, Rome and Oslo", name=unique("budget")
            )
            result = await handle.result()
    finally:
        # The scripted provider is registered process-wide: give the session worker its own back.
        scripted_provider.register(settings.scripted)

    assert result.reason is FinishReason.BUDGET
    assert result.usage.cost_usd >= 0.0001
    assert result.steps == 2  # one model step and its tool call, then the budget check stops it
    finished = result.stack[-1]
    assert finished.kind is State.FINISHED
    assert finished.reason is FinishReason.BUDGET
    assert "budget" in finished.preview
    assert len(of_kind(result.stack, State.TOOL_CALL)) == 1


# --- continue-as-new ------------------------------------------------------------------------


async def test_long_conversation_continues_as_new_and_keeps_its_stack(
    client: Client, settings: Settings
) -> None:
    short_runs = settings.model_copy(
        update={"conversation": ConversationSettings(continue_as_new_events=200)}
    )
    cities = [c for c in WEATHER if c not in ("Lisbon", "Santiago")]  # the cache test's city
    asked = list(itertools.islice(itertools.cycle(cities), 150))
    spec = agent(settings, limits={"max_steps": 400, "max_delegation_depth": 3})
    handle, _ = await start_conversation(
        client, short_runs, spec, "weather in " + ", ".join(asked), name=unique("long")
    )
    first_run_id = handle.result_run_id
    assert first_run_id is not None
    result = await handle.result()

    assert result.reason is FinishReason.DONE
    assert result.steps == 301
    assert len(result.stack) == 303
    assert kinds(result.stack) == [
        State.USER_MESSAGE,
        *[State.TOOL_CALL, State.TOOL_RESULT] * 150,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
    assert [c.preview for c in of_kind(result.stack, State.TOOL_CALL)] == [
        f'get_weather({{"city": "{city}"}})' for city in asked
    ]
    first_run = await client.get_workflow_handle(handle.id, run_id=first_run_id).describe()
    assert first_run.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    latest = await client.get_workflow_handle(handle.id).describe()
    assert latest.run_id != first_run_id
    assert latest.status == WorkflowExecutionStatus.COMPLETED


# --- ordering -------------------------------------------------------------------------------


async def test_stack_entries_are_in_step_order_and_calls_in_asked_order(
    client: Client, settings: Settings
) -> None:
    _handle, result = await converse(
        client, settings, agent(settings), "weather in Paris, Rome and Oslo", "order"
    )

    steps = [e.step for e in result.stack]
    assert steps == sorted(steps)
    assert steps == [0, 1, 2, 3, 4, 5, 6, 7, 7]
    assert [c.preview for c in of_kind(result.stack, State.TOOL_CALL)] == [
        'get_weather({"city": "Paris"})',
        'get_weather({"city": "Rome"})',
        'get_weather({"city": "Oslo"})',
    ]
    # Each result answers the call just before it.
    for call, answer in zip(
        of_kind(result.stack, State.TOOL_CALL),
        of_kind(result.stack, State.TOOL_RESULT),
        strict=True,
    ):
        assert answer.tool_call_id == call.tool_call_id
        assert answer.step == call.step + 1
    assert result.reply_ref is not None
    reply = (await open_store(settings).get_node(result.reply_ref)).text or ""
    assert reply.index("Paris") < reply.index("Rome") < reply.index("Oslo")


SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED


class NapArgs(BaseModel):
    label: str
    nap_ms: int


@pytest.fixture()
def napper() -> Iterator[str]:
    """A tool that sleeps before answering, so the calls of one step overlap."""
    name = unique("nap").replace("-", "_")

    @registry.tool(name, "Sleeps, then echoes its label.", NapArgs, side_effect_free=True)
    async def _nap(args: NapArgs) -> dict[str, str]:
        await asyncio.sleep(args.nap_ms / 1000)
        return {"label": args.label}

    try:
        yield name
    finally:
        registry._TOOLS.pop(name, None)


async def test_calls_of_one_step_run_concurrently_and_return_in_call_order(
    client: Client, settings: Settings, napper: str
) -> None:
    calls = [{"label": "first", "nap_ms": 600}, {"label": "second", "nap_ms": 10},
             {"label": "third", "nap_ms": 300}]  # fmt: skip
    handle, result = await converse(
        client,
        settings,
        agent(settings, tools=[napper]),
        f"call {napper} with {json.dumps(calls)}",
        "parallel",
    )

    assert result.reason is FinishReason.DONE
    tool_calls = of_kind(result.stack, State.TOOL_CALL)
    tool_results = of_kind(result.stack, State.TOOL_RESULT)
    assert {c.step for c in tool_calls} == {1}  # one model step asked for all three
    assert [r.tool_call_id for r in tool_results] == [c.tool_call_id for c in tool_calls]
    assert ['"first"' in r.preview for r in tool_results] == [True, False, False]
    assert ['"third"' in r.preview for r in tool_results] == [False, False, True]
    # All three ran inside one workflow task (quick tools without effects), at once: they
    # ended in the order of their naps, not of the calls, within less than the naps' sum.
    # Markers are recorded as runs end; activity ids are given in call order.
    runs = sorted(await local_runs(handle, "run_tool"), key=lambda r: int(r["activity_id"]))
    assert len(runs) == 3

    def ns(time: dict[str, int]) -> int:
        return int(time.get("seconds", 0)) * 10**9 + int(time.get("nanos", 0))

    ended = [ns(r["complete_time"]) for r in runs]
    assert ended[1] < ended[2] < ended[0]
    assert max(ended) - min(ns(r["original_schedule_time"]) for r in runs) < 0.91e9
