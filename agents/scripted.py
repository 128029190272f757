"""The offline `scripted` model: deterministic replies from a few plain-language rules.

- "delegate to AGENT: message" calls the delegate tool;
- "call TOOL with {json}" (or "call TOOL 3 times with {json}") calls that tool with exactly
  those arguments, malformed ones too, and whether or not the agent has it: a model that
  invents a tool call is what the workflow's allowlist is for; "call TOOL with [{json},
  {json}]" makes one call per item, all in the same step;
- "transfer 25 to agent_beta for helping" calls transfer_funds, "reward agent_beta 5 for
  the report" calls reward_agent (amounts passed as written, so bad ones reach the tool),
  "my balance" calls check_balance and "transaction history" calls transaction_history;
- "weather in Paris" (or "in Paris, Tokyo and Oslo") calls get_weather once per city, one
  city per step, then answers from the results;
- "simulate error 429" fails the call with that HTTP status, to exercise retries;
- anything else gets a fixed, deterministic answer.
Asked to judge (a system prompt that starts with contract.evals.JUDGE_MARKER), it grades the
work against the question on four features, each 0..1, and scores their mean:
- relevant: the share of the question's words of four letters or more found in the work;
- specific: 1 when the work contains a digit;
- concise: 1 when the work is 20 to 600 characters long;
- no_refusal: 0 when the work says cannot, sorry, unable or error.
Work that contains "simulate judge garbage" gets a reply that is not a verdict, every time.
Asked to compare two works (contract.evals.PAIR_MARKER), it grades each so and names the one
with the higher mean the winner, a tie when the means are equal; it never looks at which
came first.
Weather and delegation use only tools the agent has; otherwise the model says so. When a tool
rejects its arguments, the model retries once with unknown keys moved onto the missing
required ones, as a model reading the validation message would.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any

from p2engine.agents.turn import Turn, latest_turn
from p2engine.contract.evals import (
    FIRST_HEADING,
    JUDGE_MARKER,
    PAIR_MARKER,
    QUESTION_HEADING,
    SECOND_HEADING,
    WORK_HEADING,
)
from p2engine.contract.models import ToolCallRequest

PROVIDER = "scripted"  # models are `scripted/<name>`, served by scripted_provider.py
WEATHER_RE = re.compile(r"weather (?:in|for|at) ([^?!.]+)", re.IGNORECASE)
DELEGATE_RE = re.compile(r"delegate to ([\w\-]+)\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
CALL_RE = re.compile(
    r"call ([\w\-]+)(?: (\d+) times)? with (\{.*\}|\[.*\])", re.IGNORECASE | re.DOTALL
)
TRANSFER_RE = re.compile(
    r"\b(?:transfer|pay|send) (\S+) to ([\w\-]+)(?: for (.+?))?[.!?]?$", re.IGNORECASE
)
REWARD_RE = re.compile(r"\breward ([\w\-]+) (?:with )?(\S+)(?: for (.+?))?[.!?]?$", re.IGNORECASE)
BALANCE_RE = re.compile(r"\b(?:my|check (?:my |the )?)\s*balance\b", re.IGNORECASE)
HISTORY_RE = re.compile(r"\b(?:transaction history|my transactions)\b", re.IGNORECASE)
NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")
ERROR_RE = re.compile(r"simulate error (\d{3})", re.IGNORECASE)
ARITHMETIC_RE = re.compile(r"what is ([\d\s+\-*/().]+)\??$", re.IGNORECASE)
GREETING_RE = re.compile(r"^\s*(hi|hello|hey)\b", re.IGNORECASE)
WORD_RE = re.compile(r"[A-Za-z]{4,}")
REFUSAL_RE = re.compile(r"\b(cannot|sorry|unable|error)\b", re.IGNORECASE)
INVALID_ARGUMENTS = "invalid arguments"


@dataclass(frozen=True)
class ScriptedReply:
    text: str | None = None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)


class ScriptedFailure(Exception):
    """Asked for by "simulate error NNN"; the provider turns it into an HTTP-style error."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"scripted model: simulated HTTP {status_code}")
        self.status_code = status_code


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
    if tool_name in ("transfer_funds", "reward_agent") and isinstance(data, dict):
        paid = "Rewarded" if tool_name == "reward_agent" else "Paid"
        return (
            f"{paid} {data.get('to')} {data.get('amount')} (transfer {data.get('transfer_id')});"
            f" my balance is now {data.get('balance')}."
        )
    if tool_name == "check_balance" and isinstance(data, dict):
        return f"My balance is {data.get('balance')}."
    if tool_name == "transaction_history" and isinstance(data, dict):
        lines = [
            f"{t['kind']} {t['amount']} from {t['from']} to {t['to']}"
            for t in data.get("transfers", [])
        ]
        return f"{len(lines)} recent transfers" + (": " + "; ".join(lines) if lines else ".")
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


def _payment(target_key: str, target: str, amount: str, reason: str | None) -> str:
    """Arguments as the user wrote them: a number stays a JSON number (even 1e309), anything
    else is passed as a string for the tool to refuse."""
    shown = amount if NUMBER_RE.match(amount) else json.dumps(amount)
    fields = [f'"{target_key}": {json.dumps(target)}', f'"amount": {shown}']
    if reason:
        fields.append(f'"reason": {json.dumps(reason.strip())}')
    return "{" + ", ".join(fields) + "}"


def _corrected(arguments: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """Fix arguments the tool rejected by moving unknown keys onto missing required ones."""
    try:
        given = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if not isinstance(given, dict):
        return None
    parameters = schema.get("parameters") or {}
    properties = parameters.get("properties") or {}
    missing = [name for name in parameters.get("required") or [] if name not in given]
    strays = [key for key in given if key not in properties]
    if not missing or not strays:
        return None
    fixed = {key: value for key, value in given.items() if key in properties}
    fixed.update({name: given[stray] for name, stray in zip(missing, strays, strict=False)})
    return fixed


def _answer_lines(turn: Turn) -> list[str]:
    """One line per tool result, leaving out rejected calls that were later retried."""
    lines = []
    for n, result in enumerate(turn.results):
        retried = any(later.tool_name == result.tool_name for later in turn.results[n + 1 :])
        if retried and INVALID_ARGUMENTS in result.content:
            continue
        lines.append(_describe_result(result.tool_name, result.content))
    return lines


def _parallel_calls(name: str, arguments: str, position: int) -> ScriptedReply:
    """ "call TOOL with [{...}, {...}]": one call per list item, all in one step."""
    try:
        items = json.loads(arguments)
    except json.JSONDecodeError:
        items = [arguments]
    calls = [
        ToolCallRequest(
            id=f"call_{position}_{name}_{n}",
            name=name,
            arguments=item if isinstance(item, str) else json.dumps(item),
        )
        for n, item in enumerate(items)
    ]
    return ScriptedReply(tool_calls=calls)


GARBAGE_VERDICT = "It looks fine to me."


def judge_verdict(prompt: str) -> str:
    """The scripted judge's reply to a judge prompt (see the module docstring)."""
    question, _, work = prompt.partition(f"\n\n{WORK_HEADING}")
    question = question.removeprefix(QUESTION_HEADING).strip()
    work = work.partition("\n")[2].strip()
    if "simulate judge garbage" in work.lower():
        return GARBAGE_VERDICT
    parts = _features(question, work)
    weak = [name for name, value in parts.items() if value < 1] or ["none"]
    rationale = f"scripted judge: weak on {', '.join(weak)}"
    return json.dumps({"score": _mean(parts), "rationale": rationale, "parts": parts})


def pair_verdict(prompt: str) -> str:
    """The scripted judge's reply to a pairwise prompt (see the module docstring)."""
    question, _, works = prompt.partition(f"\n\n{FIRST_HEADING}\n")
    question = question.removeprefix(QUESTION_HEADING).strip()
    first, _, second = works.partition(f"\n\n{SECOND_HEADING}\n")
    if "simulate judge garbage" in f"{first}\n{second}".lower():
        return GARBAGE_VERDICT
    a, b = _mean(_features(question, first.strip())), _mean(_features(question, second.strip()))
    winner = "A" if a > b else "B" if b > a else "tie"
    rationale = f"scripted judge: A scores {a}, B {b}"
    return json.dumps({"winner": winner, "rationale": rationale})


def _features(question: str, work: str) -> dict[str, float]:
    asked = {w.lower() for w in WORD_RE.findall(question)}
    found = {w.lower() for w in WORD_RE.findall(work)}
    return {
        "relevant": round(len(asked & found) / len(asked), 3) if asked else 1.0,
        "specific": 1.0 if re.search(r"\d", work) else 0.0,
        "concise": 1.0 if 20 <= len(work) <= 600 else 0.0,
        "no_refusal": 0.0 if REFUSAL_RE.search(work) else 1.0,
    }


def _mean(parts: dict[str, float]) -> float:
    return round(sum(parts.values()) / len(parts), 3)


def respond(messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]) -> ScriptedReply:
    """Decide the next reply from the transcript and the tools offered (name -> function
    schema). Weather and delegation use only offered tools; an explicit "call TOOL with
    {json}" is obeyed literally, as a model that invents a tool would."""
    first = messages[0] if messages else {}
    system = str(first.get("content", "")) if first.get("role") == "system" else ""
    for marker, verdict in ((JUDGE_MARKER, judge_verdict), (PAIR_MARKER, pair_verdict)):
        if system.startswith(marker):
            prompt = next((m for m in messages if m.get("role") == "user"), {}).get("content", "")
            return ScriptedReply(text=verdict(str(prompt)))
    turn = latest_turn(messages)
    if turn.question is None:
        return ScriptedReply(text="I have no question to answer.")
    question, results = turn.question, turn.results

    if not results and (error := ERROR_RE.search(question)):
        raise ScriptedFailure(int(error.group(1)))

    def call(name: str, arguments: dict[str, Any] | str, *, offered_only: bool) -> ScriptedReply:
        if offered_only and name not in tools:
            return ScriptedReply(text=f"I cannot do that: I have no '{name}' tool.")
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = f"call_{len(messages)}_{name}"
        return ScriptedReply(tool_calls=[ToolCallRequest(id=call_id, name=name, arguments=raw)])

    if results and INVALID_ARGUMENTS in results[-1].content and len(turn.calls_made) < 3:
        last = turn.calls_made[-1]["function"]
        fixed = _corrected(last["arguments"], tools.get(last["name"], {}))
        if fixed is not None:
            return call(last["name"], fixed, offered_only=False)
    if delegation := DELEGATE_RE.search(question):
        if not results:
            target, message = delegation.group(1), delegation.group(2).strip()
            return call("delegate", {"agent_id": target, "message": message}, offered_only=True)
    elif explicit := CALL_RE.search(question):
        name, arguments = explicit.group(1), explicit.group(3)
        if arguments.startswith("[") and not results:
            return _parallel_calls(name, arguments, len(messages))
        if len(results) < int(explicit.group(2) or 1):
            return call(name, arguments, offered_only=False)
    elif not results and (transfer := TRANSFER_RE.search(question)):
        amount, payee, reason = transfer.groups()
        arguments = _payment("to_agent", payee, amount, reason)
        return call("transfer_funds", arguments, offered_only=True)
    elif not results and (reward := REWARD_RE.search(question)):
        payee, amount, reason = reward.groups()
        return call("reward_agent", _payment("agent_id", payee, amount, reason), offered_only=True)
    elif not results and BALANCE_RE.search(question):
        return call("check_balance", {}, offered_only=True)
    elif not results and HISTORY_RE.search(question):
        return call("transaction_history", {}, offered_only=True)
    elif weather := WEATHER_RE.search(question):
        cities = _cities(weather.group(1))
        if len(results) < len(cities):
            return call("get_weather", {"city": cities[len(results)]}, offered_only=True)

    if results:
        return ScriptedReply(text=" ".join(_answer_lines(turn)))
    return ScriptedReply(text=_plain_answer(question))


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)
