"""Pure decisions about tool calls: duplicate keys and delegation checks (workflows/calls.py)."""

from __future__ import annotations

from p2engine.contract.agent import AgentLimits, AgentSpec
from p2engine.contract.models import ToolInfo
from p2engine.contract.routing import Routing
from p2engine.workflows.calls import QUICK_TOOL_S, call_key, delegation_refusal, runs_local

# --- call_key --------------------------------------------------------------------------------


def test_call_key_ignores_key_order_and_spacing() -> None:
    a = call_key("pay", '{"to": "bob", "amount": 5}')
    b = call_key("pay", '{ "amount":5,\n  "to":"bob" }')
    assert a == b


def test_call_key_differs_for_different_arguments() -> None:
    assert call_key("pay", '{"to": "bob", "amount": 5}') != call_key(
        "pay", '{"to": "bob", "amount": 6}'
    )


def test_call_key_differs_for_a_different_tool() -> None:
    assert call_key("pay", '{"amount": 5}') != call_key("refund", '{"amount": 5}')


def test_call_key_names_the_tool() -> None:
    assert call_key("pay", "{}").startswith("pay:")


def test_empty_arguments_count_as_an_empty_object() -> None:
    assert call_key("pay", "") == call_key("pay", "{}") == call_key("pay", " { } ")


def test_malformed_json_is_still_keyed_by_its_text() -> None:
    first = call_key("pay", "{not json")
    assert first.startswith("pay:")
    assert call_key("pay", "{not json") == first
    assert call_key("pay", "{not json!") != first
    assert call_key("pay", "{}") != first


# --- delegation_refusal ----------------------------------------------------------------------


def agent(agent_id: str, max_depth: int = 3) -> AgentSpec:
    return AgentSpec(id=agent_id, limits=AgentLimits(max_delegation_depth=max_depth))


def test_delegating_to_oneself_is_a_cycle() -> None:
    refusal = delegation_refusal(agent("A"), [], "A")
    assert refusal == "delegation cycle refused: A -> A"


def test_delegating_back_to_an_ancestor_is_a_cycle_showing_the_chain() -> None:
    refusal = delegation_refusal(agent("B"), ["A"], "A")
    assert refusal is not None
    assert "cycle" in refusal
    assert "A -> B -> A" in refusal


def test_cycle_through_a_longer_chain_is_refused() -> None:
    refusal = delegation_refusal(agent("C"), ["A", "B"], "B")
    assert refusal is not None
    assert "A -> B -> C -> B" in refusal


def test_delegating_to_a_new_agent_is_allowed() -> None:
    assert delegation_refusal(agent("A"), [], "B") is None
    assert delegation_refusal(agent("B"), ["A"], "C") is None


def test_delegation_at_the_maximum_depth_is_allowed() -> None:
    assert delegation_refusal(agent("C", max_depth=3), ["A", "B"], "D") is None


def test_delegation_over_the_maximum_depth_is_refused() -> None:
    refusal = delegation_refusal(agent("D", max_depth=3), ["A", "B", "C"], "E")
    assert refusal is not None
    assert "depth 4" in refusal
    assert "max_delegation_depth 3" in refusal
    assert "of D" in refusal


def test_max_delegation_depth_zero_refuses_any_delegation() -> None:
    refusal = delegation_refusal(agent("A", max_depth=0), [], "B")
    assert refusal is not None
    assert "max_delegation_depth 0" in refusal


def test_the_delegating_agents_own_limit_applies() -> None:
    assert delegation_refusal(agent("B", max_depth=1), ["A"], "C") is not None
    assert delegation_refusal(agent("B", max_depth=2), ["A"], "C") is None


# --- runs_local ------------------------------------------------------------------------------


def test_a_quick_side_effect_free_tool_runs_inside_the_workflow_task() -> None:
    assert runs_local(ToolInfo(name="get_weather", side_effect_free=True), None)
    assert runs_local(ToolInfo(name="t", side_effect_free=True, timeout_s=QUICK_TOOL_S), None)


def test_a_tool_with_effects_keeps_an_activity_of_its_own() -> None:
    assert not runs_local(ToolInfo(name="transfer_funds", side_effect_free=False), None)


def test_a_slow_tool_keeps_an_activity_of_its_own() -> None:
    slow = ToolInfo(name="crawl", side_effect_free=True, timeout_s=QUICK_TOOL_S + 1)
    assert not runs_local(slow, None)


def test_tool_calls_routed_to_a_queue_of_their_own_run_there() -> None:
    quick = ToolInfo(name="get_weather", side_effect_free=True)
    assert not runs_local(quick, Routing(tools="p2e-tools"))
    assert runs_local(quick, Routing(models="p2e-models"))
