"""The transcript an agent step reads (activities/transcript.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP)
from p2engine.activities.transcript import ContentActivities, Transcript, node_to_message
from p2engine.agents.personas import PersonaLibrary, render
from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.models import (
    Catalog,
    CatalogPartInput,
    ContentNode,
    StepInput,
    ToolCallRequest,
)
from p2engine.contract.names import CATALOG_NOT_FOUND, CONFIG_NOT_FOUND
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


# --- Transcript.prompt -----------------------------------------------------------------------


async def read(transcript: Transcript, inp: StepInput) -> list[dict[str, Any]]:
    return (await transcript.prompt(inp)).messages


def step_input(pending: list[ContentNode], **fields: object) -> StepInput:
    return StepInput.model_validate(
        {
            "conversation_id": "conv-1",
            "agent_id": "agent_helper",
            "step": 2,
            "model": "scripted/default",
            "head": pending[-1].ref() if pending else None,
            "pending": pending,
            **fields,
        }
    )


async def test_messages_stores_the_pending_nodes(store: LocalArtifactStore) -> None:
    first = node(State.USER_MESSAGE, text="hi")
    reply = node(State.ASSISTANT_MESSAGE, parent=first.ref(), text="hello")
    second = node(State.USER_MESSAGE, parent=reply.ref(), text="weather?")
    messages = await read(Transcript(store, PERSONAS), step_input([first, reply, second]))
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
    messages = await read(Transcript(store, PERSONAS), inp)
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
    messages = await read(Transcript(store, PERSONAS), inp)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "You are agent_helper." in messages[0]["content"]


async def test_messages_without_system_prompt_or_persona_have_no_system_message(
    store: LocalArtifactStore,
) -> None:
    messages = await read(
        Transcript(store, PERSONAS), step_input([node(State.USER_MESSAGE, text="hi")])
    )
    assert messages == [{"role": "user", "content": "hi"}]


# --- the transcripts a worker keeps ----------------------------------------------------------


async def tool_called(transcript: Transcript) -> ContentNode:
    """A model step that calls a tool, and the tool's result node, not stored yet."""
    question = node(State.USER_MESSAGE, text="weather in Paris?")
    first = step_input([question])
    await read(transcript, first)
    call = ToolCallRequest(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    reply = await transcript.reply(first, None, [call], Usage(), "scripted/default")
    result_ref = await transcript.store.put_text('{"city": "Paris"}')
    return node(State.TOOL_RESULT, parent=reply.ref, tool_call_id="call_1", result_ref=result_ref)


async def two_steps(transcript: Transcript) -> tuple[StepInput, list[dict[str, object]]]:
    """A model step that calls a tool, then the step that reads the tool's result."""
    second = step_input([await tool_called(transcript)])
    return second, await read(transcript, second)


async def test_a_step_after_a_kept_one_reads_only_its_new_nodes(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcript = Transcript(store, PERSONAS)
    question = node(State.USER_MESSAGE, text="weather in Paris?")
    await read(transcript, step_input([question]))

    monkeypatch.setattr(store, "chain", no_chain)
    _, messages = await two_steps(transcript)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2]["content"] == '{"city": "Paris"}'


async def no_chain(head: str) -> list[ContentNode]:
    raise AssertionError("the whole chain was read")


async def test_a_result_the_tool_stored_is_read_alone_after_a_kept_step(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcript = Transcript(store, PERSONAS)
    answer = await tool_called(transcript)
    await store.put_node(answer)  # as the tool's activity stores it (TOOL_STORES_RESULT)
    monkeypatch.setattr(store, "chain", no_chain)
    messages = await read(transcript, step_input([], head=answer.ref()))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2]["content"] == '{"city": "Paris"}'


async def test_a_cold_worker_reads_a_stored_result_and_the_chain_before_it(
    store: LocalArtifactStore,
) -> None:
    warm = Transcript(store, PERSONAS)
    answer = await tool_called(warm)
    await store.put_node(answer)
    after_result = step_input([], head=answer.ref())
    assert await read(Transcript(store, PERSONAS), after_result) == await read(warm, after_result)


async def test_a_restarted_worker_rebuilds_the_same_transcript(store: LocalArtifactStore) -> None:
    second, kept = await two_steps(Transcript(store, PERSONAS))
    assert await read(Transcript(store, PERSONAS), second) == kept


async def test_the_kept_transcripts_are_bounded(store: LocalArtifactStore) -> None:
    transcript = Transcript(store, PERSONAS, kept=2)
    heads = [node(State.USER_MESSAGE, text=f"question {n}") for n in range(3)]
    for head in heads:
        await read(transcript, step_input([head]))
    assert transcript._kept.get(heads[0].ref()) is None
    assert transcript._kept.get(heads[2].ref()) is not None


async def test_editing_returned_messages_leaves_the_kept_ones_alone(
    store: LocalArtifactStore,
) -> None:
    transcript = Transcript(store, PERSONAS)
    inp = step_input([node(State.USER_MESSAGE, text="hi")])
    (await read(transcript, inp)).append({"role": "user", "content": "extra"})
    assert await read(transcript, inp) == [{"role": "user", "content": "hi"}]


# --- the config a step runs: by ref from CONFIG_BY_REF, its knobs inline before ------------

CRITIC = "You are $agent_id ($description); criticise. Tools: $tools."
BY_REF = AgentConfig(
    agent_id="agent_helper",
    system_prompt="Be brief.",
    persona="critic",
    persona_text=CRITIC,
    tools=("get_weather",),
    model="scripted/default",
)


def by_ref(pending: list[ContentNode], config: AgentConfig | None = BY_REF) -> StepInput:
    """A step of revision 6: the config's ref, and the config itself when `config` is set."""
    return step_input(pending, config_ref=BY_REF.ref, config=config, description="Desk")


async def test_a_config_sent_along_is_stored_under_its_ref_and_runs(
    store: LocalArtifactStore,
) -> None:
    prompt = await Transcript(store, PERSONAS).prompt(by_ref([node(State.USER_MESSAGE, text="hi")]))
    assert prompt.config == BY_REF
    assert await store.get_text(BY_REF.ref) == BY_REF.canonical()
    assert await store.resolve(BY_REF.id) == BY_REF.ref  # its id finds it too
    assert prompt.messages[0] == {"role": "system", "content": "Be brief."}


async def test_a_step_that_sends_only_the_ref_reads_the_config_from_the_store(
    store: LocalArtifactStore,
) -> None:
    first = node(State.USER_MESSAGE, text="hi")
    await Transcript(store, PERSONAS).prompt(by_ref([first]))
    second = node(State.USER_MESSAGE, parent=first.ref(), text="and Oslo?")
    inp = by_ref([second], config=None)
    assert inp.inline_config() is None  # nothing but the ref goes with it
    prompt = await Transcript(store, PERSONAS).prompt(inp)  # another worker: nothing kept
    assert prompt.config == BY_REF
    assert [m["role"] for m in prompt.messages] == ["system", "system", "user", "user"]


async def test_a_worker_reads_a_ref_once(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcript = Transcript(store, PERSONAS)
    await transcript.prompt(by_ref([node(State.USER_MESSAGE, text="hi")]))

    async def no_read(ref: str) -> str:
        raise AssertionError("the kept config was read again")

    monkeypatch.setattr(store, "get_text", no_read)
    inp = by_ref([node(State.USER_MESSAGE, text="again")], config=None)
    assert (await transcript.prompt(inp)).config == BY_REF


async def test_a_ref_missing_from_the_store_fails_the_step_for_good_naming_it(
    store: LocalArtifactStore,
) -> None:
    inp = by_ref([node(State.USER_MESSAGE, text="hi")], config=None)
    with pytest.raises(ApplicationError) as failed:
        await Transcript(store, PERSONAS).prompt(inp)
    assert failed.value.type == CONFIG_NOT_FOUND
    assert failed.value.non_retryable
    assert BY_REF.ref in failed.value.message


def disk(tmp_path: Path, text: str) -> PersonaLibrary:
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "critic.md").write_text(text)
    return PersonaLibrary(tmp_path / "personas")


async def test_a_persona_by_ref_is_rendered_from_the_configs_text_not_the_disk(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    transcript = Transcript(store, disk(tmp_path, "On disk: $agent_id."))
    prompt = await transcript.prompt(by_ref([node(State.USER_MESSAGE, text="hi")]))
    expected = render(CRITIC, agent_id="agent_helper", description="Desk", tools=["get_weather"])
    assert prompt.messages[1] == {"role": "system", "content": expected}
    assert expected == "You are agent_helper (Desk); criticise. Tools: get_weather."


async def test_a_step_with_its_knobs_inline_still_reads_the_persona_from_disk(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    transcript = Transcript(store, disk(tmp_path, "On disk: $agent_id with $tools."))
    inp = step_input([node(State.USER_MESSAGE, text="hi")], persona="critic", tools=["x"])
    prompt = await transcript.prompt(inp)
    assert prompt.messages[0] == {"role": "system", "content": "On disk: agent_helper with x."}
    assert prompt.config == inp.inline_config()
    assert (prompt.config.persona, prompt.config.persona_text) == ("critic", None)


# --- the whole catalog a slim one names (CATALOG_BY_REF) --------------------------------------


async def test_read_catalog_returns_the_part_asked_for(store: LocalArtifactStore) -> None:
    critic = AgentSpec(id="critic", persona="critic")
    whole = Catalog(
        agents=[AgentSpec(id="alpha"), critic],
        personas=["critic", "expert"],
        persona_texts={"critic": "Be critical.", "expert": "Be expert."},
    )
    ref = await store.put_text(whole.model_dump_json())
    content = ContentActivities(store)
    part = await content.read_catalog(CatalogPartInput(ref=ref, agents=["critic"]))
    assert part.agents == [critic]
    assert part.persona_texts == {"critic": "Be critical."}
    expert = await content.read_catalog(CatalogPartInput(ref=ref, personas=["expert"]))
    assert (expert.agents, expert.persona_texts) == ([], {"expert": "Be expert."})


async def test_a_catalog_missing_from_the_store_is_a_non_retryable_error(
    store: LocalArtifactStore,
) -> None:
    missing = CatalogPartInput(ref="0" * 64, agents=["critic"])
    with pytest.raises(ApplicationError) as failed:
        await ContentActivities(store).read_catalog(missing)
    assert failed.value.type == CATALOG_NOT_FOUND
    assert failed.value.non_retryable
    assert "0" * 64 in str(failed.value)
