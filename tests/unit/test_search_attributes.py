"""The search attributes a conversation shows, and the upserts that bring them current."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from p2engine.contract.agent import AgentSpec
from p2engine.contract.models import ConversationInput, ConversationState
from p2engine.contract.states import State
from p2engine.workflows import search


def shown(**values: object) -> TypedSearchAttributes:
    keys: dict[str, SearchAttributeKey[Any]] = {
        "agent": search.AGENT,
        "state": search.STATE,
        "step": search.STEP,
    }
    return TypedSearchAttributes([SearchAttributePair(keys[k], v) for k, v in values.items()])


def updated_names(current: TypedSearchAttributes, state: ConversationState) -> list[str]:
    wanted = search.conversation_attributes("agent_alpha", state)
    return [update.key.name for update in search.changed_attributes(current, wanted)]


def test_a_conversation_shows_its_agent_state_and_step() -> None:
    state = ConversationState(state=State.TOOL_CALL, step=4)
    pairs = search.conversation_attributes("agent_alpha", state)
    assert [(p.key.name, p.value) for p in pairs] == [
        ("P2eAgent", "agent_alpha"),
        ("P2eState", "ToolCall"),
        ("P2eStep", 4),
    ]


def test_values_already_shown_are_not_written_again() -> None:
    current = shown(agent="agent_alpha", state="ToolCall", step=4)
    assert updated_names(current, ConversationState(state=State.TOOL_CALL, step=4)) == []


def test_only_the_changed_values_are_written() -> None:
    current = shown(agent="agent_alpha", state="ToolCall", step=4)
    assert updated_names(current, ConversationState(state=State.FINISHED, step=4)) == ["P2eState"]


def test_values_never_shown_are_written() -> None:
    assert updated_names(shown(), ConversationState(state=State.USER_MESSAGE, step=0)) == [
        "P2eAgent",
        "P2eState",
        "P2eStep",
    ]


def test_a_conversation_with_a_message_shows_its_first_step_from_the_start() -> None:
    inp = ConversationInput(agent=AgentSpec(id="agent_alpha"), message="hi")
    started = search.start_attributes(inp)
    assert (started.get(search.AGENT), started.get(search.STATE), started.get(search.STEP)) == (
        "agent_alpha",
        "UserMessage",
        1,
    )
    # so the first task, on step 1 from the user's message, has nothing to write
    assert updated_names(started, ConversationState(state=State.USER_MESSAGE, step=1)) == []


def test_a_conversation_waiting_for_its_first_message_shows_only_its_agent() -> None:
    inp = ConversationInput(agent=AgentSpec(id="agent_alpha"), interactive=True)
    started = search.start_attributes(inp)
    assert started.get(search.AGENT) == "agent_alpha"
    assert started.get(search.STATE) is None and started.get(search.STEP) is None
