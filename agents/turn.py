"""Reading the latest turn of an OpenAI-style transcript: the question and the tool results
that answered this turn's calls. Shared by the offline agents (scripted model and rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2engine.contract.models import ToolCallRequest


@dataclass(frozen=True)
class ToolResultText:
    tool_name: str
    content: str


@dataclass(frozen=True)
class Turn:
    question: str | None
    results: list[ToolResultText]
    calls_made: list[dict[str, Any]]  # the assistant's tool calls of this turn, in order


def openai_tool_call(call: ToolCallRequest) -> dict[str, Any]:
    """A tool call as an OpenAI-format assistant message carries it (what litellm speaks)."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def latest_turn(messages: list[dict[str, Any]]) -> Turn:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    if last_user < 0:
        return Turn(None, [], [])
    turn = messages[last_user + 1 :]
    calls = [
        call for m in turn if m.get("role") == "assistant" for call in m.get("tool_calls") or []
    ]
    names = {call["id"]: call["function"]["name"] for call in calls}
    results = [
        ToolResultText(names.get(str(m.get("tool_call_id")), "tool"), text_of(m))
        for m in turn
        if m.get("role") == "tool"
    ]
    return Turn(text_of(messages[last_user]), results, calls)
