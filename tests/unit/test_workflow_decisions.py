"""The pure decisions the conversation workflow asks for (workflows/validators.py, limits.py,
details.py, children.py, calls.py), tested without Temporal."""

from __future__ import annotations

import pytest

from p2engine.contract.agent import AgentLimits, AgentSpec
from p2engine.contract.inputs import MESSAGE_MAX_BYTES
from p2engine.contract.models import (
    Catalog,
    ConversationInput,
    ConversationState,
    Overrides,
    StackEntry,
    ToolInfo,
)
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.workflows import search, validators
from p2engine.workflows.calls import call_refusal, duplicate_verdict
from p2engine.workflows.children import child_input, child_search_attributes, child_summary
from p2engine.workflows.details import current_details
from p2engine.workflows.limits import limit_reached

ALPHA = AgentSpec(id="alpha", tools=["get_weather"])
WAITING_USER = ConversationState(state=State.WAITING, waiting_for="user")
WAITING_HUMAN = ConversationState(state=State.WAITING, waiting_for="human")
FINISHED = ConversationState(state=State.FINISHED, reason=FinishReason.DONE)
CATALOG = Catalog(tools=[ToolInfo(name="get_weather")], personas=["critic"])

# --- update validators -----------------------------------------------------------------------


def test_a_message_is_taken_while_an_interactive_conversation_waits_for_its_user() -> None:
    assert validators.send_message_problem(WAITING_USER, True, "hi") is None


@pytest.mark.parametrize(
    ("state", "interactive", "text", "problem"),
    [
        (WAITING_USER, True, "  ", "the message is empty"),
        (WAITING_USER, True, "x" * (MESSAGE_MAX_BYTES + 1), "KiB"),
        (WAITING_USER, False, "hi", "one-shot"),
        (FINISHED, True, "hi", "the conversation has finished"),
        (ConversationState(), True, "hi", "still answering"),
        (WAITING_USER.model_copy(update={"inbox": ["first"]}), True, "hi", "still answering"),
    ],
)
def test_a_message_is_refused_with_the_reason(
    state: ConversationState, interactive: bool, text: str, problem: str
) -> None:
    refusal = validators.send_message_problem(state, interactive, text)
    assert refusal is not None and problem in refusal


def test_an_answer_is_taken_only_on_the_human_agents_turn() -> None:
    assert validators.answer_problem(WAITING_HUMAN, ALPHA, "yes", False) is None
    assert validators.answer_problem(WAITING_USER, ALPHA, "yes", False) == (
        "it is not alpha's turn to answer"
    )
    assert validators.answer_problem(WAITING_HUMAN, ALPHA, "yes", True) == (
        "an answer is already being delivered"
    )
    assert validators.answer_problem(WAITING_HUMAN, ALPHA, "", False) == "the answer is empty"


def test_only_a_conversation_waiting_for_its_user_can_be_ended() -> None:
    assert validators.end_problem(WAITING_USER) is None
    assert validators.end_problem(WAITING_HUMAN) is not None
    assert validators.end_problem(FINISHED) == "the conversation has finished"


def test_overrides_name_known_personas_and_tools_on_an_open_conversation() -> None:
    assert validators.behavior_problem(WAITING_USER, CATALOG, "critic") is None
    assert validators.behavior_problem(WAITING_USER, CATALOG, "none") is None
    assert validators.behavior_problem(WAITING_USER, CATALOG, "poet") == (
        "unknown persona 'poet'; known: critic"
    )
    assert validators.tools_problem(WAITING_USER, CATALOG, ["get_weather"]) is None
    assert validators.tools_problem(WAITING_USER, CATALOG, ["launch"]) == (
        "unknown tool 'launch'; registered tools: get_weather"
    )
    assert validators.tools_problem(FINISHED, CATALOG, None) == "the conversation has finished"


def test_a_model_override_needs_an_llm_agent_and_a_name() -> None:
    assert validators.model_problem(WAITING_USER, ALPHA, "scripted/x") is None
    assert validators.model_problem(WAITING_USER, ALPHA, " ") == "the model name is empty"
    rules = AgentSpec(id="rules", type="human")
    assert validators.model_problem(WAITING_USER, rules, "scripted/x") == (
        "rules is a human agent and uses no model"
    )


# --- limits ----------------------------------------------------------------------------------


def test_the_step_limit_ends_before_the_step_over_it() -> None:
    limits = AgentLimits(max_steps=3)
    assert limit_reached(limits, 2, Usage()) is None
    assert limit_reached(limits, 3, Usage()) == (FinishReason.MAX_STEPS, "step limit 3 reached")


def test_the_budget_ends_once_the_cost_reaches_it() -> None:
    limits = AgentLimits(max_cost=0.01)
    assert limit_reached(limits, 1, Usage(cost_usd=0.009)) is None
    assert limit_reached(limits, 1, Usage(cost_usd=0.01)) == (
        FinishReason.BUDGET,
        "cost $0.0100 reached the budget $0.0100",
    )


# --- Web UI details --------------------------------------------------------------------------


def test_details_read_like_a_transcript_line() -> None:
    s = ConversationState(
        state=State.ASSISTANT_MESSAGE,
        step=3,
        usage=Usage(prompt_tokens=100, completion_tokens=45, total_tokens=145),
        stack=[StackEntry(step=3, kind=State.ASSISTANT_MESSAGE, agent_id="alpha", preview="15°C")],
        runs=2,
        overrides=Overrides(model="scripted/other"),
    )
    assert current_details("alpha", s) == (
        "**alpha** · state **AssistantMessage** · step 3 · 145 tokens · $0.0000 · run 2\n\n"
        'last: AssistantMessage 15°C\n\noverrides: {"model":"scripted/other"}'
    )


# --- delegation ------------------------------------------------------------------------------


def test_a_child_continues_the_parents_history_only_when_the_agent_shares_it() -> None:
    helper = AgentSpec(id="helper")
    sharing = ConversationInput(
        agent=ALPHA.model_copy(update={"delegation_context": "history"}),
        catalog=CATALOG,
        lineage=["root"],
        continue_as_new_events=500,
    )
    child = child_input(sharing, helper, "what now?", "head-ref", CATALOG)
    assert (child.agent, child.message, child.catalog) == (helper, "what now?", CATALOG)
    assert child.lineage == ["root", "alpha"]
    assert child.context_head == "head-ref"
    assert child.continue_as_new_events == 500
    private = sharing.model_copy(update={"agent": ALPHA})
    assert child_input(private, helper, "what now?", "head-ref", CATALOG).context_head is None


def test_a_child_of_a_slim_catalog_carries_its_own_agents_persona_text_only() -> None:
    helper = AgentSpec(id="helper", persona="critic")
    whole = Catalog(
        agents=[ALPHA, helper],
        personas=["critic", "expert"],
        persona_texts={"critic": "Be critical.", "expert": "Be expert."},
        ref="catalog-ref",
    )
    parent = ConversationInput(agent=ALPHA, catalog=whole.for_agent(ALPHA, []))
    read = parent.catalog.with_part(whole.part(["helper"], ["critic"]))
    child = child_input(parent, helper, "review this", None, read)
    assert child.catalog.agents == []
    assert child.catalog.agent_ids == ["alpha", "helper"]
    assert child.catalog.persona_texts == {"critic": "Be critical."}
    assert child.catalog.ref == "catalog-ref"


def test_a_child_carries_its_agent_as_search_attribute_and_summary() -> None:
    helper = AgentSpec(id="helper")
    assert child_search_attributes(helper).get(search.AGENT) == "helper"
    assert child_summary(helper, "x" * 300).startswith("helper: xxx")
    assert len(child_summary(helper, "x" * 300)) <= 200


# --- call admission --------------------------------------------------------------------------


def test_a_call_outside_the_agents_tools_is_refused() -> None:
    assert call_refusal("get_weather", ["get_weather"], "alpha") is None
    assert call_refusal("launch", ["get_weather"], "alpha") == (
        "tool 'launch' is not allowed for alpha"
    )


@pytest.mark.parametrize(
    ("policy", "verdict"),
    [("strict", ("identical pay call already made at step 1", False)),
     ("penalty", (None, True)),
     ("none", (None, False))],
)  # fmt: skip
def test_a_repeated_call_follows_the_policy(policy: str, verdict: tuple[str | None, bool]) -> None:
    seen: dict[str, int] = {}
    assert duplicate_verdict("pay", '{"a": 1}', 1, seen, set(), policy) == (None, False)  # type: ignore[arg-type]
    assert duplicate_verdict("pay", '{ "a":1 }', 2, seen, set(), policy) == verdict  # type: ignore[arg-type]


def test_the_same_call_twice_in_one_step_is_a_repeat() -> None:
    seen: dict[str, int] = {}
    keys: set[str] = set()
    assert duplicate_verdict("pay", "{}", 4, seen, keys, "penalty") == (None, False)
    assert duplicate_verdict("pay", "{}", 4, seen, keys, "penalty") == (None, True)
    assert duplicate_verdict("pay", '{"b": 2}', 4, seen, keys, "penalty") == (None, False)
