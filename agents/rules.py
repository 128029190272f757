"""rule_based agents: ordered rules, first match wins, no model.

A rule matches the latest user message. A reply rule answers at once; a tool rule calls its
tool and, once the result is back, answers with `reply` where `$result` is the tool output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from string import Template
from typing import Any

from p2engine.agents.turn import latest_turn
from p2engine.contract.agent import Rule
from p2engine.contract.models import ToolCallRequest


@dataclass(frozen=True)
class RuleReply:
    text: str | None = None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)


def respond(rules: list[Rule], fallback: str, messages: list[dict[str, Any]]) -> RuleReply:
    turn = latest_turn(messages)
    if turn.question is None:
        return RuleReply(text=fallback)
    rule = next((r for r in rules if r.matches(turn.question)), None)
    if rule is None:
        return RuleReply(text=fallback)
    if rule.tool is None:
        return RuleReply(text=rule.reply)
    if not turn.results:
        call = ToolCallRequest(
            id=f"rule_{len(messages)}_{rule.tool}",
            name=rule.tool,
            arguments=json.dumps(rule.arguments),
        )
        return RuleReply(tool_calls=[call])
    result = turn.results[-1].content
    if rule.reply is None:
        return RuleReply(text=f"{rule.tool} returned: {result}")
    return RuleReply(text=Template(rule.reply).safe_substitute(result=result))
