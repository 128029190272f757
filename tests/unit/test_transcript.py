"""The transcript an agent step reads (activities/transcript.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP)
from activities.transcript import Transcript, node_to_message
from agents.personas import PersonaLibrary
from contract.models import ContentNode, StepInput, ToolCallRequest
from contract.states import State
from runtime.settings import PROJECT_ROOT
from store.artifacts import ArtifactStore

PERSONAS = PersonaLibrary(PROJECT_ROOT / "config" / "personas")


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path)


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


def test_user_node_is_a_user_message(store: ArtifactStore) -> None:
    message = node_to_message(node(State.USER_MESSAGE, text="hi"), store)
    assert message == {"role": "user", "content": "hi"}


def test_tool_call_node_is_an_assistant_message_with_calls(store: ArtifactStore) -> None:
    call = ToolCallRequest(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    message = node_to_message(node(State.TOOL_CALL, tool_calls=[call]), store)
    assert message["role"] == "assistant"
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


def test_tool_result_node_reads_its_stored_result(store: ArtifactStore) -> None:
    ref = store.put_text('{"city": "Paris"}')
    message = node_to_message(node(State.TOOL_RESULT, tool_call_id="call_1", result_ref=ref), store)
    assert message == {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris"}'}


def test_tool_result_node_without_a_ref_uses_its_inline_text(store: ArtifactStore) -> None:
    text = '{"error": "tool \'pay\' is not allowed"}'
    message = node_to_message(node(State.TOOL_RESULT, tool_call_id="call_1", text=text), store)
    assert message == {"role": "tool", "tool_call_id": "call_1", "content": text}


def test_agent_result_merges_the_childs_answer(store: ArtifactStore) -> None:
    answer = node(
        State.ASSISTANT_MESSAGE,
        conversation_id="conv-1/d1-agent_helper",
        agent_id="agent_helper",
        text="In Tokyo it is 18°C.",
    )
    answer_ref = store.put_node(answer)
    result = node(
        State.AGENT_RESULT,
        tool_call_id="call_7",
        tool_name="delegate",
        text=json.dumps({"agent_id": "agent_helper", "status": "done"}),
        result_ref=answer_ref,
        child_id="conv-1/d1-agent_helper",
    )
    message = node_to_message(result, store)
    assert message["role"] == "tool"
    assert message["tool_call_id"] == "call_7"
    assert json.loads(message["content"]) == {
        "agent_id": "agent_helper",
        "status": "done",
        "answer": "In Tokyo it is 18°C.",
    }


def test_agent_result_without_a_child_reply_keeps_its_text(store: ArtifactStore) -> None:
    refusal = {"error": "delegation cycle refused: agent_alpha -> agent_alpha"}
    message = node_to_message(
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


def test_messages_stores_the_pending_nodes(store: ArtifactStore) -> None:
    first = node(State.USER_MESSAGE, text="hi")
    reply = node(State.ASSISTANT_MESSAGE, parent=first.ref(), text="hello")
    second = node(State.USER_MESSAGE, parent=reply.ref(), text="weather?")
    messages = Transcript(store, PERSONAS).messages(step_input([first, reply, second]))
    for pending in (first, reply, second):
        assert store.get_node(pending.ref()) == pending
    assert messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "weather?"},
    ]


def test_messages_put_the_system_prompt_first_then_the_persona(store: ArtifactStore) -> None:
    question = node(State.USER_MESSAGE, text="Weather in Oslo?")
    inp = step_input(
        [question],
        system_prompt="You are agent_helper.",
        persona="weather_expert",
        description="Weather specialist",
        tools=["get_weather", "delegate"],
    )
    messages = Transcript(store, PERSONAS).messages(inp)
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


def test_messages_with_a_persona_and_no_system_prompt(store: ArtifactStore) -> None:
    inp = step_input([node(State.USER_MESSAGE, text="hi")], persona="critic")
    messages = Transcript(store, PERSONAS).messages(inp)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "You are agent_helper." in messages[0]["content"]


def test_messages_without_system_prompt_or_persona_have_no_system_message(
    store: ArtifactStore,
) -> None:
    messages = Transcript(store, PERSONAS).messages(
        step_input([node(State.USER_MESSAGE, text="hi")])
    )
    assert messages == [{"role": "user", "content": "hi"}]
