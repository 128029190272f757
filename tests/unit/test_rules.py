"""rule_based agents (agents/rules.py): first matching rule, tool calls and their results."""

from __future__ import annotations

import json
from typing import Any

from p2engine.agents.registry import AgentRegistry
from p2engine.agents.rules import RuleReply, respond
from p2engine.contract.agent import Rule
from p2engine.contract.models import ToolCallRequest
from p2engine.runtime.settings import PROJECT_ROOT

FALLBACK = "I have no rule for that."
WEATHER_RULE = Rule(
    contains="weather",
    tool="get_weather",
    arguments={"city": "Zurich"},
    reply="Weather check: $result",
)
ZURICH = {"city": "Zurich", "temperature": 9, "condition": "fog"}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def after_tool(question: str, call: ToolCallRequest, content: str) -> list[dict[str, Any]]:
    """The transcript once the rule's tool call has answered."""
    return [
        user(question),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": content},
    ]


def only_call(reply: RuleReply) -> ToolCallRequest:
    assert reply.text is None
    assert len(reply.tool_calls) == 1
    return reply.tool_calls[0]


def test_first_matching_rule_wins_in_order() -> None:
    rules = [
        Rule(contains="pay", reply="first"),
        Rule(regex="pay", reply="second"),
        Rule(contains="rent", reply="third"),
    ]
    assert respond(rules, FALLBACK, [user("pay the rent")]).text == "first"
    assert respond(list(reversed(rules)), FALLBACK, [user("pay the rent")]).text == "third"


def test_a_later_rule_answers_when_earlier_ones_do_not_match() -> None:
    rules = [Rule(contains="balance", reply="first"), Rule(contains="rent", reply="second")]
    assert respond(rules, FALLBACK, [user("pay the rent")]).text == "second"


def test_reply_rule_answers_with_its_reply_and_no_calls() -> None:
    reply = respond([Rule(contains="balance", reply="On the ledger.")], FALLBACK, [user("balance")])
    assert reply == RuleReply(text="On the ledger.")


def test_the_latest_user_message_is_the_one_matched() -> None:
    rules = [Rule(contains="balance", reply="ledger"), Rule(contains="hello", reply="hi")]
    messages = [user("balance?"), {"role": "assistant", "content": "ledger"}, user("hello")]
    assert respond(rules, FALLBACK, messages).text == "hi"


def test_tool_rule_emits_one_call_with_json_arguments() -> None:
    call = only_call(respond([WEATHER_RULE], FALLBACK, [user("How is the weather?")]))
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Zurich"}
    assert call.id


def test_tool_rule_without_arguments_sends_an_empty_object() -> None:
    rule = Rule(contains="weather", tool="get_weather")
    call = only_call(respond([rule], FALLBACK, [user("weather")]))
    assert json.loads(call.arguments) == {}


def test_after_the_tool_result_the_reply_substitutes_result() -> None:
    question = "How is the weather?"
    call = only_call(respond([WEATHER_RULE], FALLBACK, [user(question)]))
    content = json.dumps(ZURICH)
    reply = respond([WEATHER_RULE], FALLBACK, after_tool(question, call, content))
    assert reply.tool_calls == []
    assert reply.text == f"Weather check: {content}"


def test_reply_template_leaves_other_dollar_signs_alone() -> None:
    rule = Rule(contains="price", tool="get_weather", reply="$currency costs $result")
    call = only_call(respond([rule], FALLBACK, [user("price")]))
    reply = respond([rule], FALLBACK, after_tool("price", call, "12"))
    assert reply.text == "$currency costs 12"


def test_tool_rule_without_reply_reports_the_tool_output() -> None:
    rule = Rule(contains="weather", tool="get_weather", arguments={"city": "Zurich"})
    call = only_call(respond([rule], FALLBACK, [user("weather")]))
    content = json.dumps(ZURICH)
    reply = respond([rule], FALLBACK, after_tool("weather", call, content))
    assert reply.tool_calls == []
    assert reply.text == f"get_weather returned: {content}"


def test_no_matching_rule_gives_the_fallback() -> None:
    reply = respond([Rule(contains="balance", reply="ledger")], FALLBACK, [user("sing a song")])
    assert reply == RuleReply(text=FALLBACK)


def test_no_user_message_gives_the_fallback() -> None:
    reply = respond([Rule(contains="balance", reply="ledger")], FALLBACK, [])
    assert reply == RuleReply(text=FALLBACK)


def test_project_treasurer_rules() -> None:
    treasurer = AgentRegistry.load(PROJECT_ROOT / "config" / "agents.yml").get("treasurer")
    rules, fallback = treasurer.rules, treasurer.fallback_reply
    assert only_call(respond(rules, fallback, [user("What's my balance?")])).name == "check_balance"
    assert only_call(respond(rules, fallback, [user("show the history")])).name == (
        "transaction_history"
    )
    assert "Payments" in (respond(rules, fallback, [user("Please PAY Bob")]).text or "")
    assert respond(rules, fallback, [user("Tell me a joke")]).text == fallback
    call = only_call(respond(rules, fallback, [user("Check the weather")]))
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Zurich"}
