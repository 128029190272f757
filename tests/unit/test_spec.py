"""Agent specs and rules as data (agents/spec.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from p2engine.contract.agent import AgentLimits, AgentSpec, Rule

# --- Rule validation -------------------------------------------------------------------------


def test_rule_with_contains_and_reply_is_valid() -> None:
    rule = Rule(contains="balance", reply="On the ledger.")
    assert rule.tool is None
    assert rule.arguments == {}


def test_rule_with_regex_and_tool_is_valid() -> None:
    rule = Rule(regex=r"\bweather\b", tool="get_weather", arguments={"city": "Zurich"})
    assert rule.reply is None
    assert rule.arguments == {"city": "Zurich"}


@pytest.mark.parametrize(
    "data",
    [
        {"reply": "hi"},
        {"contains": "a", "regex": "a", "reply": "hi"},
    ],
    ids=["neither", "both"],
)
def test_rule_needs_exactly_one_of_contains_or_regex(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'contains' or 'regex'"):
        Rule.model_validate(data)


def test_rule_needs_a_reply_or_a_tool() -> None:
    with pytest.raises(ValidationError, match="needs a 'reply', a 'tool' or both"):
        Rule(contains="balance")


def test_rule_arguments_need_a_tool() -> None:
    with pytest.raises(ValidationError, match="'arguments' needs a 'tool'"):
        Rule(contains="balance", reply="hi", arguments={"city": "Paris"})


def test_rule_with_a_bad_regex_names_it() -> None:
    with pytest.raises(ValidationError, match=r"invalid regex '\(unclosed'"):
        Rule(regex="(unclosed", reply="hi")


def test_rule_with_an_empty_contains_is_rejected() -> None:
    with pytest.raises(ValidationError, match="contains"):
        Rule(contains="", reply="hi")


def test_rule_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Rule.model_validate({"contains": "a", "reply": "hi", "colour": "red"})


# --- Rule.matches ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["balance", "What is my BALANCE?", "Balance please"])
def test_contains_matches_case_insensitively(text: str) -> None:
    assert Rule(contains="Balance", reply="x").matches(text)


def test_contains_does_not_match_other_text() -> None:
    assert not Rule(contains="balance", reply="x").matches("pay the rent")


def test_regex_matches_anywhere_in_the_text() -> None:
    rule = Rule(regex=r"\b(pay|transfer)\b", reply="x")
    assert rule.matches("please transfer 5 USD")
    assert rule.matches("pay now")
    assert not rule.matches("payment due")


def test_regex_is_case_sensitive_unless_it_says_otherwise() -> None:
    assert not Rule(regex="pay", reply="x").matches("PAY now")
    assert Rule(regex="(?i)pay", reply="x").matches("PAY now")


# --- AgentSpec -------------------------------------------------------------------------------


def test_rule_based_agent_needs_rules() -> None:
    with pytest.raises(ValidationError, match="rule_based agent needs at least one rule"):
        AgentSpec(id="r1", type="rule_based")


def test_rule_based_agent_with_rules_is_valid() -> None:
    spec = AgentSpec(
        id="r1",
        type="rule_based",
        tools=["get_weather"],
        rules=[Rule(contains="weather", tool="get_weather"), Rule(regex="pay", reply="no")],
    )
    assert spec.rule_tools() == {"get_weather"}
    assert spec.fallback_reply


@pytest.mark.parametrize("agent_type", ["llm", "human"])
def test_rules_on_a_non_rule_based_agent_are_rejected(agent_type: str) -> None:
    data = {"id": "a1", "type": agent_type, "rules": [{"contains": "x", "reply": "y"}]}
    with pytest.raises(
        ValidationError, match=f"'rules' apply to rule_based agents, not {agent_type}"
    ):
        AgentSpec.model_validate(data)


def test_unknown_agent_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="type"):
        AgentSpec.model_validate({"id": "a1", "type": "robot"})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"id": "a1", "colour": "red"}, "colour"),
        ({"id": "a1", "limits": {"max_stepz": 3}}, "max_stepz"),
        ({"id": "a1", "eval": {"evaluators": ["default"], "judge": "x"}}, "judge"),
    ],
)
def test_unknown_keys_are_rejected(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError, match=key) as info:
        AgentSpec.model_validate(data)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_agent_defaults() -> None:
    spec = AgentSpec(id="a1")
    assert spec.type == "llm"
    assert spec.dedup is None
    assert spec.delegation_context == "message"
    assert spec.human_timeout_s == 86400
    assert spec.rules == []
    assert spec.eval is None


def test_limits_defaults() -> None:
    limits = AgentSpec(id="a1").limits
    assert limits == AgentLimits()
    assert limits.max_steps == 20
    assert limits.max_cost is None
    assert limits.max_delegation_depth == 3


@pytest.mark.parametrize(
    "limits",
    [
        {"max_steps": 0},
        {"max_cost": -0.01},
        {"max_delegation_depth": -1},
    ],
)
def test_limits_out_of_bounds_are_rejected(limits: dict[str, Any]) -> None:
    (key,) = limits
    with pytest.raises(ValidationError, match=key):
        AgentSpec.model_validate({"id": "a1", "limits": limits})


def test_limits_at_their_lower_bounds_are_accepted() -> None:
    limits = AgentLimits(max_steps=1, max_cost=0, max_delegation_depth=0)
    assert (limits.max_steps, limits.max_cost, limits.max_delegation_depth) == (1, 0, 0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("human_timeout_s", 0),
        ("temperature", 2.5),
        ("top_p", 0),
        ("max_tokens", 0),
        ("dedup", "sometimes"),
        ("delegation_context", "everything"),
    ],
)
def test_out_of_range_agent_fields_are_rejected(key: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=key):
        AgentSpec.model_validate({"id": "a1", key: value})
