"""What a conversation's history carries: a slim catalog whose whole is in the store
(revision 8), read from there only when a delegation needs it; and no node for a tool
result its call stored (revision 9). A real dev server and worker."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from p2engine.contract.models import Catalog
from p2engine.contract.names import READ_CATALOG
from p2engine.contract.states import FinishReason, State
from p2engine.runtime.catalog import load_catalog
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.settings import Settings
from p2engine.store import open_store
from p2engine.store.artifacts import LocalArtifactStore
from tests.integration.helpers import (
    agent,
    converse,
    local_activities,
    start_input,
    step_inputs,
    unique,
)

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_conversation_carries_a_slim_catalog_and_reads_nothing_of_the_whole(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client, settings, agent(settings), "What's the weather in Paris?", "slim"
    )
    assert result.reason is FinishReason.DONE

    carried = (await start_input(handle)).catalog
    whole = load_catalog(settings)
    assert carried.agents == [] and carried.persona_texts == {}  # agent_alpha has no persona
    assert carried.agent_ids == [a.id for a in whole.agents]
    assert carried.evaluators == []  # none scores agent_alpha here
    assert (carried.tools, carried.personas) == (whole.tools, whole.personas)
    assert carried.ref is not None
    stored = Catalog.model_validate_json(await open_store(settings).get_text(carried.ref))
    assert stored == whole
    assert await local_activities(handle, READ_CATALOG) == []


async def test_a_delegation_reads_its_targets_spec_and_hands_the_child_a_slim_catalog(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        "Delegate to agent_helper: what's the weather in Tokyo?",
        "delegating",
    )

    assert result.reason is FinishReason.DONE
    assert await local_activities(handle, READ_CATALOG) == [READ_CATALOG]
    [delegated] = [e for e in result.stack if e.kind is State.AGENT_RESULT]
    assert delegated.child_id is not None
    child = await start_input(client.get_workflow_handle(delegated.child_id))
    helper = load_catalog(settings).agent("agent_helper")
    assert child.agent == helper
    assert child.catalog.agents == []
    assert child.catalog.persona_texts == {
        "weather_expert": load_catalog(settings).persona_texts["weather_expert"]
    }
    assert child.catalog.ref == (await start_input(handle)).catalog.ref


async def test_a_call_alone_in_its_step_stores_its_result_and_the_next_step_sends_none(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client, settings, agent(settings), "weather in Paris and Oslo", "alone"
    )

    steps = await step_inputs(handle)
    assert [len(s.pending) for s in steps] == [1, 0, 0]  # the user message, then nothing
    # The transcript the reply ends is whole: every result node is in the store.
    assert result.reply_ref is not None
    chain = await open_store(settings).chain(result.reply_ref)
    assert [n.kind for n in chain] == [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.ASSISTANT_MESSAGE,
    ]
    reply = chain[-1].text or ""
    assert "Paris" in reply and "Oslo" in reply


async def test_calls_of_one_step_send_their_result_nodes_with_the_next_step(
    client: Client, settings: Settings
) -> None:
    handle, result = await converse(
        client,
        settings,
        agent(settings),
        'call get_weather with [{"city": "Paris"}, {"city": "Oslo"}]',
        "together",
    )

    steps = await step_inputs(handle)
    assert len(steps) == 2
    assert [n.kind for n in steps[1].pending] == [State.TOOL_RESULT, State.TOOL_RESULT]
    assert steps[1].pending[1].parent == steps[1].pending[0].ref()
    assert result.reason is FinishReason.DONE


async def test_one_client_puts_a_catalog_once_for_many_starts(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    puts: list[str] = []
    put_text = LocalArtifactStore.put_text

    async def counted(store: LocalArtifactStore, text: str) -> str:
        puts.append(text)
        return await put_text(store, text)

    monkeypatch.setattr(LocalArtifactStore, "put_text", counted)
    conversations = ConversationClient(settings, client)
    inp = conversations.build_input(agent(settings), "What's the weather in Paris?")
    whole = inp.catalog.model_dump_json()
    handles = [(await conversations.start(inp, name=unique("once")))[0] for _ in range(2)]
    changed = inp.catalog.model_copy(update={"personas": [*inp.catalog.personas, "extra"]})
    handles.append((await conversations.start(inp.model_copy(update={"catalog": changed})))[0])

    carried = [await start_input(handle) for handle in handles]
    assert puts.count(whole) == 1 and puts.count(changed.model_dump_json()) == 1
    assert carried[0].catalog.ref == carried[1].catalog.ref != carried[2].catalog.ref
    assert carried[0].store_id == carried[2].store_id == await open_store(settings).identity()
    for handle in handles:
        await handle.result()
