"""Conversations driven through updates: human agents answering, interactive turns, and
runtime overrides of model, tools and persona."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy

from p2engine.contract.agent import AgentSpec
from p2engine.contract.models import ConversationInput, ConversationResult, Overrides
from p2engine.contract.names import READ_CATALOG
from p2engine.contract.states import FinishReason, State
from p2engine.runtime.catalog import load_catalog
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import Settings
from p2engine.workflows.conversation import ConversationWorkflow
from tests.integration.helpers import (
    activity_summaries,
    agent,
    conversation,
    kinds,
    local_activities,
    status,
    step_inputs,
    unique,
    wait_until_waiting,
)

pytestmark = pytest.mark.usefixtures("worker")


def rejection(err: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str:
    """The validator's message carried by a rejected update."""
    return str(err.value.cause)


async def start_one_shot(
    client: Client, settings: Settings, spec: AgentSpec, message: str, prefix: str
) -> WorkflowHandle[ConversationWorkflow, ConversationResult]:
    started, _ = await start_conversation(client, settings, spec, message, name=unique(prefix))
    return conversation(client, started.id)


async def start_chat(
    client: Client, settings: Settings, prefix: str, agent_id: str = "agent_alpha"
) -> WorkflowHandle[ConversationWorkflow, ConversationResult]:
    handle, started = await start_conversation(
        client,
        settings,
        agent(settings, agent_id),
        None,
        name=unique(prefix),
        interactive=True,
    )
    assert started
    await wait_until_waiting(handle, "user")
    return conversation(client, handle.id)


# --- human agents ---------------------------------------------------------------------------


async def test_human_agent_is_answered_through_an_update(
    client: Client, settings: Settings
) -> None:
    handle = await start_one_shot(
        client, settings, agent(settings, "reviewer"), "Please review the plan.", "hum"
    )
    waiting = await wait_until_waiting(handle, "human")
    assert waiting.state is State.WAITING
    assert waiting.agent_id == "reviewer"
    assert waiting.reason is None

    with pytest.raises(WorkflowUpdateFailedError) as empty:
        await handle.execute_update(ConversationWorkflow.answer, "   ")
    assert "empty" in rejection(empty)
    # A one-shot conversation takes no user messages, even while its human agent waits.
    with pytest.raises(WorkflowUpdateFailedError) as one_shot:
        await handle.execute_update(ConversationWorkflow.send_message, "hello?")
    assert "one-shot" in rejection(one_shot)

    turn = await handle.execute_update(ConversationWorkflow.answer, "Approved.")
    assert turn.reply_preview == "Approved."
    assert turn.state is State.FINISHED
    assert turn.reason is FinishReason.DONE
    assert kinds(turn.entries) == [State.ASSISTANT_MESSAGE, State.FINISHED]

    result = await handle.result()
    assert result.reason is FinishReason.DONE
    assert result.reply_preview == "Approved."
    assert kinds(result.stack) == [
        State.USER_MESSAGE,
        State.WAITING,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
    assert result.stack[1].waiting_for == "human"
    assert result.usage.total_tokens == 0  # no model ran


async def test_answer_is_rejected_when_no_human_is_waiting(
    client: Client, settings: Settings
) -> None:
    handle = await start_chat(client, settings, "noanswer")

    with pytest.raises(WorkflowUpdateFailedError) as not_waiting:
        await handle.execute_update(ConversationWorkflow.answer, "Approved.")
    assert "not agent_alpha's turn" in rejection(not_waiting)

    await handle.execute_update(ConversationWorkflow.end)
    assert (await handle.result()).reason is FinishReason.DONE


async def test_human_agent_times_out(client: Client, settings: Settings) -> None:
    impatient = agent(settings, "reviewer", human_timeout_s=1)
    handle, _ = await start_conversation(
        client, settings, impatient, "Please review the plan.", name=unique("hum-timeout")
    )
    result = await handle.result()

    assert result.reason is FinishReason.TIMEOUT
    assert result.stack[-1].kind is State.FINISHED
    assert result.stack[-1].reason is FinishReason.TIMEOUT
    assert "no answer from reviewer in 1 s" in result.stack[-1].preview
    assert (await status(handle)).waiting_for is None


async def test_human_agent_answers_a_delegation(client: Client, settings: Settings) -> None:
    handle, _ = await start_conversation(
        client,
        settings,
        agent(settings),
        "delegate to reviewer: approve the plan?",
        name=unique("hum-delegate"),
    )
    child = conversation(client, f"{handle.id}/d2-reviewer")
    waiting = await wait_until_waiting(child, "human")
    assert waiting.agent_id == "reviewer"
    parent = await status(handle)
    assert parent.state is State.AGENT_CALL

    turn = await child.execute_update(ConversationWorkflow.answer, "Yes, ship it.")
    assert turn.reason is FinishReason.DONE

    result = await handle.result()
    assert result.reason is FinishReason.DONE
    assert "reviewer says: " in result.reply_preview
    assert "Yes, ship it." in result.reply_preview
    agent_result = next(e for e in result.stack if e.kind is State.AGENT_RESULT)
    assert agent_result.status == "ok"
    assert agent_result.child_id == child.id
    assert (await child.result()).reply_preview == "Yes, ship it."


# --- interactive conversations ----------------------------------------------------------------


async def test_interactive_conversation_takes_turns_until_ended(
    client: Client, settings: Settings
) -> None:
    handle = await start_chat(client, settings, "chat")
    opened = await status(handle)
    assert opened.state is State.WAITING and opened.waiting_for == "user"
    assert opened.step == 0

    first = await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    assert kinds(first.entries) == [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.ASSISTANT_MESSAGE,
        State.WAITING,
    ]
    assert "Paris" in first.reply_preview
    assert first.state is State.WAITING
    assert first.reason is None

    second = await handle.execute_update(ConversationWorkflow.send_message, "what is 2 + 3")
    assert kinds(second.entries) == [State.USER_MESSAGE, State.ASSISTANT_MESSAGE, State.WAITING]
    assert "2 + 3 = 5" in second.reply_preview

    with pytest.raises(WorkflowUpdateFailedError) as empty:
        await handle.execute_update(ConversationWorkflow.send_message, "  ")
    assert "empty" in rejection(empty)

    await handle.execute_update(ConversationWorkflow.end)
    result = await handle.result()
    assert result.reason is FinishReason.DONE
    assert result.stack[-1].kind is State.FINISHED
    assert result.stack[-1].preview == "ended by the user"
    assert kinds(result.stack) == [
        State.WAITING,
        *kinds(first.entries),
        *kinds(second.entries),
        State.FINISHED,
    ]


async def test_first_message_delivered_with_the_start_is_accepted(
    client: Client, settings: Settings
) -> None:
    # Update-with-start delivers the update in the very first workflow task, together with
    # the start: the new conversation must already accept it as its first message.
    catalog = load_catalog(settings)
    spec = catalog.agent("agent_alpha")
    assert spec is not None
    start = WithStartWorkflowOperation(
        ConversationWorkflow.run,
        ConversationInput(agent=spec, catalog=catalog, interactive=True),
        id=f"conv-{unique('with-start')}",
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    turn = await client.execute_update_with_start_workflow(
        ConversationWorkflow.send_message, "weather in Paris", start_workflow_operation=start
    )

    assert "Paris" in turn.reply_preview
    assert turn.state is State.WAITING
    handle = await start.workflow_handle()
    await handle.execute_update(ConversationWorkflow.end)
    result = await handle.result()
    assert result.reason is FinishReason.DONE
    assert kinds(result.stack)[:2] == [State.WAITING, State.USER_MESSAGE]


async def test_one_shot_conversation_rejects_send_message(
    client: Client, settings: Settings
) -> None:
    handle = await start_one_shot(
        client, settings, agent(settings, "reviewer"), "Review this.", "oneshot"
    )
    await wait_until_waiting(handle, "human")

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    assert "one-shot" in rejection(rejected)
    with pytest.raises(WorkflowUpdateFailedError) as not_ended:
        await handle.execute_update(ConversationWorkflow.end)
    assert "waiting for its user" in rejection(not_ended)

    await handle.execute_update(ConversationWorkflow.answer, "Done.")
    assert (await handle.result()).reason is FinishReason.DONE


# --- runtime overrides ----------------------------------------------------------------------


async def test_runtime_overrides_apply_from_the_next_step(
    client: Client, settings: Settings
) -> None:
    handle = await start_chat(client, settings, "overrides")

    assert await handle.execute_update(ConversationWorkflow.set_model, "scripted/other") == (
        Overrides(model="scripted/other")
    )
    turn = await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    model_steps = [e for e in turn.entries if e.kind in (State.TOOL_CALL, State.ASSISTANT_MESSAGE)]
    assert len(model_steps) == 2
    for entry in model_steps:
        assert entry.overrides is not None and entry.overrides.model == "scripted/other"
    assert [s for s in await activity_summaries(handle) if " · step " in s] == [
        "agent_alpha · scripted/other · step 1",
        "agent_alpha · scripted/other · step 3",
    ]

    assert await handle.execute_update(ConversationWorkflow.set_tools, []) == Overrides(
        model="scripted/other", tools=[]
    )
    no_tools = await handle.execute_update(ConversationWorkflow.send_message, "weather in Rome")
    assert "no 'get_weather' tool" in no_tools.reply_preview
    assert kinds(no_tools.entries) == [State.USER_MESSAGE, State.ASSISTANT_MESSAGE, State.WAITING]

    with pytest.raises(WorkflowUpdateFailedError) as unknown_tool:
        await handle.execute_update(ConversationWorkflow.set_tools, ["nope"])
    assert "unknown tool 'nope'" in rejection(unknown_tool)
    unchanged = await handle.query(ConversationWorkflow.overrides)
    assert unchanged == Overrides(model="scripted/other", tools=[])

    critic = await handle.execute_update(ConversationWorkflow.set_behavior, "critic")
    assert critic.persona == "critic"
    with pytest.raises(WorkflowUpdateFailedError) as unknown_persona:
        await handle.execute_update(ConversationWorkflow.set_behavior, "nosuch")
    assert "unknown persona 'nosuch'" in rejection(unknown_persona)
    assert (await handle.query(ConversationWorkflow.overrides)).persona == "critic"

    restored = await handle.execute_update(ConversationWorkflow.set_tools, None)
    assert restored == Overrides(model="scripted/other", persona="critic")
    again = await handle.execute_update(ConversationWorkflow.send_message, "weather in Rome")
    assert "In Rome it is 21°C" in again.reply_preview
    for entry in again.entries:
        if entry.kind in (State.TOOL_CALL, State.ASSISTANT_MESSAGE):
            assert entry.overrides == Overrides(model="scripted/other", persona="critic")

    assert await handle.execute_update(ConversationWorkflow.set_model, None) == Overrides(
        persona="critic"
    )
    await handle.execute_update(ConversationWorkflow.end)
    assert (await handle.result()).reason is FinishReason.DONE


async def test_a_persona_override_sends_its_config_once_and_a_config_sent_before_by_ref(
    client: Client, settings: Settings
) -> None:
    handle = await start_chat(client, settings, "persona-by-ref")
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    await handle.execute_update(ConversationWorkflow.set_behavior, "critic")
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Rome")
    await handle.execute_update(ConversationWorkflow.set_behavior, None)
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Oslo")
    await handle.execute_update(ConversationWorkflow.end)
    await handle.result()

    steps = await step_inputs(handle)
    assert len(steps) == 6  # a tool call and a reply per message
    plain, critic = steps[0].config, steps[2].config
    assert plain is not None and critic is not None
    assert (plain.persona, critic.persona) == (None, "critic")
    texts = load_catalog(settings).persona_texts
    assert critic.persona_text == texts["critic"] and plain.persona_text is None
    refs = [s.config_ref for s in steps]
    assert refs == [plain.ref, plain.ref, critic.ref, critic.ref, plain.ref, plain.ref]
    # Each config goes inline once; back to the first, its ref alone is enough.
    assert [s.config is not None for s in steps] == [True, False, True, False, False, False]
    # The critic's text came from the stored catalog, read once (CATALOG_BY_REF).
    assert await local_activities(handle, READ_CATALOG) == [READ_CATALOG]


async def test_an_override_changes_no_search_attribute_and_writes_none(
    client: Client, settings: Settings
) -> None:
    handle = await start_chat(client, settings, "quiet-override")

    async def upserts() -> int:
        events = (await handle.fetch_history()).events
        return sum(
            e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES for e in events
        )

    before = await upserts()
    await handle.execute_update(ConversationWorkflow.set_model, "scripted/other")
    await handle.execute_update(ConversationWorkflow.set_behavior, "critic")
    assert await upserts() == before
    await handle.execute_update(ConversationWorkflow.end)
    await handle.result()
    assert await upserts() == before + 1  # Waiting -> Finished
