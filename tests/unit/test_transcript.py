"""The transcript an agent step reads (activities/transcript.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP)
from p2engine.activities.transcript import Transcript, node_to_message
from p2engine.agents.personas import PersonaLibrary
from p2engine.contract.models import ContentNode, StepInput, ToolCallRequest
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.runtime.settings import PROJECT_ROOT
from p2engine.store.artifacts import LocalArtifactStore

PERSONAS = PersonaLibrary(PROJECT_ROOT / "config" / "personas")


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path)


def node(kind: State, parent: str | None = None, **fields: object) -> ContentNode:
    return ContentNode.model_validate(
        {
            "kind": kind,
            "parent": parent,
            "conversation_id": "conv-1",
            "step": 1,
            "agent_id": "agent_alpha",
            **fields,
        }
    )


async def test_user_node_is_a_user_message(store: LocalArtifactStore) -> None:
    message = await node_to_message(node(State.USER_MESSAGE, text="hi"), store)
    assert message == {"role": "user", "content": "hi"}


async def test_tool_call_node_is_an_assistant_message_with_calls(store: LocalArtifactStore) -> None:
    call = ToolCallRequest(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    message = await node_to_message(node(State.TOOL_CALL, tool_calls=[call]), store)
    assert message["role"] == "assistant"
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


async def test_tool_result_node_reads_its_stored_result(store: LocalArtifactStore) -> None:
    ref = await store.put_text('{"city": "Paris"}')
    message = await node_to_message(
        node(State.TOOL_RESULT, tool_call_id="call_1", result_ref=ref), store
    )
    assert message == {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris"}'}


async def test_tool_result_node_without_a_ref_uses_its_inline_text(
    store: LocalArtifactStore,
) -> None:
    text = '{"error": "tool \'pay\' is not allowed"}'
    message = await node_to_message(
        node(State.TOOL_RESULT, tool_call_id="call_1", text=text), store
    )
    assert message == {"role": "tool", "tool_call_id": "call_1", "content": text}


async def test_agent_result_merges_the_childs_answer(store: LocalArtifactStore) -> None:
    answer = node(
        State.ASSISTANT_MESSAGE,
        conversation_id="conv-1/d1-agent_helper",
        agent_id="agent_helper",
        text="In Tokyo it is 18°C.",
    )
    answer_ref = await store.put_node(answer)
    result = node(
        State.AGENT_RESULT,
        tool_call_id="call_7",
        tool_name="delegate",
        text=json.dumps({"agent_id": "agent_helper", "status": "done"}),
        result_ref=answer_ref,
        child_id="conv-1/d1-agent_helper",
    )
    message = await node_to_message(result, store)
    assert message["role"] == "tool"
    assert message["tool_call_id"] == "call_7"
    assert json.loads(message["content"]) == {
        "agent_id": "agent_helper",
        "status": "done",
        "answer": "In Tokyo it is 18°C.",
    }


async def test_agent_result_without_a_child_reply_keeps_its_text(store: LocalArtifactStore) -> None:
    refusal = {"error": "delegation cycle refused: agent_alpha -> agent_alpha"}
    message = await node_to_message(
        node(State.AGENT_RESULT, tool_call_id="call_7", text=json.dumps(refusal)), store
    )
    assert message["role"] == "tool"
    assert json.loads(message["content"]) == refusal


# --- Transcript.messages ---------------------------------------------------------------------


def step_input(pending: list[ContentNode], **fields: object) -> StepInput:
    return StepInput.model_validate(
        {
            "conversation_id": "conv-1",
            "agent_id": "agent_helper",
            "step": 2,
            "model": "scripted/default",
            "head": pending[-1].ref(),
            "pending": pending,
            **fields,
        }
    )


async def test_messages_stores_the_pending_nodes(store: LocalArtifactStore) -> None:
    first = node(State.USER_MESSAGE, text="hi")
    reply = node(State.ASSISTANT_MESSAGE, parent=first.ref(), text="hello")
    second = node(State.USER_MESSAGE, parent=reply.ref(), text="weather?")
    messages = await Transcript(store, PERSONAS).messages(step_input([first, reply, second]))
    for pending in (first, reply, second):
        assert await store.get_node(pending.ref()) == pending
    assert messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "weather?"},
    ]


async def test_messages_put_the_system_prompt_first_then_the_persona(
    store: LocalArtifactStore,
) -> None:
    question = node(State.USER_MESSAGE, text="Weather in Oslo?")
    inp = step_input(
        [question],
        system_prompt="You are agent_helper.",
        persona="weather_expert",
        description="Weather specialist",
        tools=["get_weather", "delegate"],
    )
    messages = await Transcript(store, PERSONAS).messages(inp)
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[0]["content"] == "You are agent_helper."
    expected = PERSONAS.render(
        "weather_expert",
        agent_id="agent_helper",
        description="Weather specialist",
        tools=["get_weather", "delegate"],
    )
    assert messages[1]["content"] == expected
    assert "Tools you can use: get_weather, delegate." in messages[1]["content"]
    assert messages[2] == {"role": "user", "content": "Weather in Oslo?"}


async def test_messages_with_a_persona_and_no_system_prompt(store: LocalArtifactStore) -> None:
    inp = step_input([node(State.USER_MESSAGE, text="hi")], persona="critic")
    messages = await Transcript(store, PERSONAS).messages(inp)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "You are agent_helper." in messages[0]["content"]


async def test_messages_without_system_prompt_or_persona_have_no_system_message(
    store: LocalArtifactStore,
) -> None:
    messages = await Transcript(store, PERSONAS).messages(
        step_input([node(State.USER_MESSAGE, text="hi")])
    )
    assert messages == [{"role": "user", "content": "hi"}]


# --- the transcripts a worker keeps ----------------------------------------------------------


async def two_steps(transcript: Transcript) -> tuple[StepInput, list[dict[str, object]]]:
    """A model step that calls a tool, then the step that reads the tool's result."""
    question = node(State.USER_MESSAGE, text="weather in Paris?")
    first = step_input([question])
    await transcript.messages(first)
    call = ToolCallRequest(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    reply = await transcript.reply(first, None, [call], Usage(), "scripted/default")
    result_ref = await transcript.store.put_text('{"city": "Paris"}')
    answer = node(State.TOOL_RESULT, parent=reply.ref, tool_call_id="call_1", result_ref=result_ref)
    second = step_input([answer])
    return second, await transcript.messages(second)


async def test_a_step_after_a_kept_one_reads_only_its_new_nodes(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcript = Transcript(store, PERSONAS)
    question = node(State.USER_MESSAGE, text="weather in Paris?")
    await transcript.messages(step_input([question]))

    async def no_chain(head: str) -> list[ContentNode]:
        raise AssertionError("the kept transcript was read again")

    monkeypatch.setattr(store, "chain", no_chain)
    _, messages = await two_steps(transcript)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2]["content"] == '{"city": "Paris"}'


async def test_a_restarted_worker_rebuilds_the_same_transcript(store: LocalArtifactStore) -> None:
    second, kept = await two_steps(Transcript(store, PERSONAS))
    assert await Transcript(store, PERSONAS).messages(second) == kept


async def test_the_kept_transcripts_are_bounded(store: LocalArtifactStore) -> None:
    transcript = Transcript(store, PERSONAS, kept=2)
    heads = [node(State.USER_MESSAGE, text=f"question {n}") for n in range(3)]
    for head in heads:
        await transcript.messages(step_input([head]))
    assert transcript._kept.get(heads[0].ref()) is None
    assert transcript._kept.get(heads[2].ref()) is not None


async def test_editing_returned_messages_leaves_the_kept_ones_alone(
    store: LocalArtifactStore,
) -> None:
    transcript = Transcript(store, PERSONAS)
    inp = step_input([node(State.USER_MESSAGE, text="hi")])
    (await transcript.messages(inp)).append({"role": "user", "content": "extra"})
    assert await transcript.messages(inp) == [{"role": "user", "content": "hi"}]
