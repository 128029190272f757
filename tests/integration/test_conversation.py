"""ConversationWorkflow end to end: real dev server, real worker, real litellm path."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from p2engine.contract.models import StackEntry
from p2engine.contract.states import FinishReason, State
from p2engine.runtime.conversations import config_memo, start_conversation
from p2engine.runtime.settings import Settings
from p2engine.store import open_store
from p2engine.workflows import search
from tests.integration.helpers import (
    activity_attempts,
    activity_summaries,
    agent,
    step_inputs,
    unique,
)

pytestmark = pytest.mark.usefixtures("worker")


def kinds(stack: list[StackEntry]) -> list[State]:
    return [entry.kind for entry in stack]


async def test_weather_question_calls_the_tool_and_answers_from_its_result(
    client: Client, settings: Settings
) -> None:
    handle, started = await start_conversation(
        client, settings, agent(settings), "What's the weather in Paris?"
    )
    result = await handle.result()

    assert started
    assert kinds(result.stack) == [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
    assert result.reason is FinishReason.DONE
    assert result.stack[1].tool_name == "get_weather"
    assert result.stack[2].status == "ok"
    store = open_store(settings)
    assert result.reply_ref is not None
    reply = (await store.get_node(result.reply_ref)).text or ""
    assert "Paris" in reply and "15°C" in reply
    # The transcript is a chain of stored nodes ending in the reply.
    chain = await store.chain(result.reply_ref)
    assert [n.kind for n in chain] == [State.USER_MESSAGE, State.TOOL_CALL, State.TOOL_RESULT,
                                       State.ASSISTANT_MESSAGE]  # fmt: skip
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.steps == 3


async def test_the_first_step_sends_the_config_and_stores_it_and_later_steps_only_its_ref(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client, settings, agent(settings, "agent_helper"), "What's the weather in Oslo?"
    )
    assert (await handle.result()).reason is FinishReason.DONE

    first, second = await step_inputs(handle)
    config = first.config
    assert config is not None and first.config_ref == config.ref
    persona = (settings.personas_dir / "weather_expert.md").read_text(encoding="utf-8")
    assert (config.persona, config.persona_text) == ("weather_expert", persona)
    assert (first.system_prompt, first.persona, first.tools) == (None, None, [])  # not inline
    assert second.config_ref == config.ref and second.config is None
    assert (second.system_prompt, second.persona, second.tools) == (None, None, [])
    # Stored by the first step, where `p2e artifact cat` finds it; the conversation's memo
    # names the same config.
    assert await open_store(settings).get_text(config.ref) == config.canonical()
    assert await config_memo(await handle.describe()) == config.id


async def test_search_attributes_and_summaries_describe_the_run(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client, settings, agent(settings), "weather in Tokyo", name="attrs"
    )
    await handle.result()

    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(search.AGENT) == "agent_alpha"
    assert attributes.get(search.STATE) == "Finished"
    assert attributes.get(search.STEP) == 3
    summaries = await activity_summaries(handle)
    assert summaries[0].startswith("agent_alpha · scripted/default · step 1")
    assert summaries[1] == 'get_weather({"city": "Tokyo"})'
    assert await description.static_summary() == "agent_alpha: weather in Tokyo"
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "**agent_alpha** · state **Finished** (done) · step 3" in metadata.current_details


async def test_search_attributes_are_written_once_per_workflow_task_and_only_when_changed(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client, settings, agent(settings), "weather in Paris and Oslo", name=unique("visible")
    )
    await handle.result()

    tasks: list[list[list[str]]] = []  # per workflow task, the keys of each upsert
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks.append([])
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            tasks[-1].append(sorted(fields.indexed_fields))
    # The agent, and the first step's state and number, came with the start. Each later task
    # runs a quick tool call and the next model step and upserts once, what it ends in: a
    # model step reading a tool result (the state, then the step alone); finishing changes
    # the state alone.
    assert tasks == [[], [["P2eState", "P2eStep"]], [["P2eStep"]], [["P2eState"]]]
    attributes = (await handle.describe()).typed_search_attributes
    assert (attributes.get(search.STATE), attributes.get(search.STEP)) == ("Finished", 5)


async def test_same_id_attaches_instead_of_starting_again(
    client: Client, settings: Settings
) -> None:
    first, started_first = await start_conversation(
        client, settings, agent(settings), "hello", name="attach-me"
    )
    first_result = await first.result()
    second, started_second = await start_conversation(
        client, settings, agent(settings), "hello again", name="attach-me"
    )

    assert started_first and not started_second
    assert second.id == first.id == "conv-attach-me"
    assert (await second.describe()).run_id == (await first.describe()).run_id
    assert (await second.result()).stack == first_result.stack


async def test_unknown_city_is_a_tool_error_the_model_answers(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(
        client, settings, agent(settings), "What's the weather in Atlantis?"
    )
    result = await handle.result()

    assert result.reason is FinishReason.DONE
    tool_result = next(e for e in result.stack if e.kind is State.TOOL_RESULT)
    assert tool_result.status == "error"
    assert "Atlantis" in result.reply_preview and "could not" in result.reply_preview


async def test_step_limit_finishes_with_max_steps(client: Client, settings: Settings) -> None:
    limited = agent(settings, limits={"max_steps": 2})
    handle, _ = await start_conversation(
        client, settings, limited, "weather in Paris, Rome and Oslo"
    )
    result = await handle.result()

    assert result.reason is FinishReason.MAX_STEPS
    assert result.stack[-1].kind is State.FINISHED
    assert result.steps == 2


async def test_non_retryable_model_error_ends_the_conversation_after_one_attempt(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(client, settings, agent(settings), "simulate error 401")
    result = await handle.result()

    assert result.reason is FinishReason.ERROR
    assert "AuthenticationError" in result.stack[-1].preview
    assert (await activity_attempts(handle))["llm_step"] == [1]


async def test_model_override_reaches_the_model_call(client: Client, settings: Settings) -> None:
    handle, _ = await start_conversation(
        client, settings, agent(settings), "hello", model="scripted/other"
    )
    await handle.result()

    assert (await activity_summaries(handle))[0] == "agent_alpha · scripted/other · step 1"


async def test_queries_report_stack_and_state_of_a_finished_run(
    client: Client, settings: Settings
) -> None:
    handle, _ = await start_conversation(client, settings, agent(settings), "what is 2 + 3")
    result = await handle.result()

    stack = await handle.query("stack", result_type=list[StackEntry])
    assert stack == result.stack
    assert "2 + 3 = 5" in result.reply_preview
