"""The offline `scripted` model: deterministic replies from a few plain-language rules.

- "weather in Paris" (or "in Paris, Tokyo and Oslo") calls get_weather once per city, one
  city per step, then answers from the results;
- "delegate to AGENT: message" calls the delegate tool;
- "call TOOL with {json}" calls any tool with exactly those arguments (malformed ones too);
- "simulate error 429" fails the call with that HTTP status, to exercise retries;
- anything else gets a fixed, deterministic answer.
A tool the agent does not have is never called; the model says so instead.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any

WEATHER_RE = re.compile(r"weather (?:in|for|at) ([^?!.]+)", re.IGNORECASE)
DELEGATE_RE = re.compile(r"delegate to ([\w\-]+)\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
CALL_RE = re.compile(r"call ([\w\-]+) with (\{.*\})", re.IGNORECASE | re.DOTALL)
ERROR_RE = re.compile(r"simulate error (\d{3})", re.IGNORECASE)
ARITHMETIC_RE = re.compile(r"what is ([\d\s+\-*/().]+)\??$", re.IGNORECASE)
GREETING_RE = re.compile(r"^\s*(hi|hello|hey)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ScriptedToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ScriptedReply:
    text: str | None = None
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)


class ScriptedFailure(Exception):
    """Asked for by "simulate error NNN"; the provider turns it into an HTTP-style error."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"scripted model: simulated HTTP {status_code}")
        self.status_code = status_code


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _cities(phrase: str) -> list[str]:
    parts = re.split(r",|\band\b", phrase)
    return [p.strip().strip("'\"") for p in parts if p.strip()]


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(expression: str) -> float | None:
    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return float(_OPS[type(node.op)](evaluate(node.left), evaluate(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand)
        raise ValueError("unsupported")

    try:
        return evaluate(ast.parse(expression.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def _describe_result(tool_name: str, content: str) -> str:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return f"{tool_name} returned: {content}"
    if isinstance(data, dict) and "error" in data:
        return f"I could not use {tool_name}: {data['error']}"
    if tool_name == "get_weather" and isinstance(data, dict) and "city" in data:
        symbol = "°C" if data.get("unit") == "celsius" else "°F"
        return (
            f"In {data['city']} it is {data['temperature']}{symbol} and {data['condition']} "
            f"(humidity {data['humidity']}%)."
        )
    if tool_name == "delegate" and isinstance(data, dict) and "answer" in data:
        return f"{data.get('agent_id', 'The other agent')} says: {data['answer']}"
    return f"{tool_name} returned: {content}"


def _plain_answer(question: str) -> str:
    if GREETING_RE.match(question):
        return "Hello! I am an offline scripted model. Ask me about the weather in a city."
    if match := ARITHMETIC_RE.search(question.strip()):
        value = _arithmetic(match.group(1))
        if value is not None:
            shown = int(value) if value.is_integer() else round(value, 6)
            return f"{match.group(1).strip()} = {shown}."
    return f'I am an offline scripted model, so I can only acknowledge: "{question.strip()}".'


def respond(messages: list[dict[str, Any]], tool_names: set[str]) -> ScriptedReply:
    """Decide the next reply from the transcript and the tools the agent may call."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    if last_user < 0:
        return ScriptedReply(text="I have no question to answer.")
    question = _text(messages[last_user])
    turn = messages[last_user + 1 :]
    results = [m for m in turn if m.get("role") == "tool"]
    names_by_call = {
        call["id"]: call["function"]["name"]
        for m in turn
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or []
    }

    if not results and (error := ERROR_RE.search(question)):
        raise ScriptedFailure(int(error.group(1)))

    def call(name: str, arguments: dict[str, Any] | str) -> ScriptedReply:
        if name not in tool_names:
            return ScriptedReply(text=f"I cannot do that: I have no '{name}' tool.")
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = f"call_{len(messages)}_{name}"
        return ScriptedReply(tool_calls=[ScriptedToolCall(call_id, name, raw)])

    if weather := WEATHER_RE.search(question):
        cities = _cities(weather.group(1))
        if len(results) < len(cities):
            return call("get_weather", {"city": cities[len(results)]})
    elif not results and (delegation := DELEGATE_RE.search(question)):
        return call("delegate", {"agent_id": delegation.group(1), "message": delegation.group(2)})
    elif not results and (explicit := CALL_RE.search(question)):
        return call(explicit.group(1), explicit.group(2))

    if results:
        lines = [
            _describe_result(names_by_call.get(str(m.get("tool_call_id")), "tool"), _text(m))
            for m in results
        ]
        return ScriptedReply(text=" ".join(lines))
    return ScriptedReply(text=_plain_answer(question))


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)
