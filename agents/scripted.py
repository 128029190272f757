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

Its system messages may carry instructions, which it obeys in its final answer (never in tool
calls), so that a better system prompt measurably gives a better answer (what `p2e learn`
improves). It recognises only these, reads no negation, and applies them in this order:
1. format: "as a bullet list" or "one line per city" puts each fact (one per tool result, or
   one per sentence when no tool ran) on its own line starting "- ";
2. units: "in Fahrenheit" or "in °F" turns every "15°C" into "59°F" (rounded half up);
   "in both units" or "Celsius and Fahrenheit" makes it "15°C (59°F)"; the one written last
   wins;
3. length: "at most N words", "no more than N words" or "under N words" cuts the answer to
   its first N words, ending with "." (the smallest N wins; bullet dashes are not words);
4. citation: "Cite the tool you used" or "name your source" ends the answer with
   " (source: get_weather)", the tools called in the conversation, or " (source: none)".
A judge rubric with a line `features: a, b` switches the judge to those features instead
(see JUDGE_FEATURES), each 0 or 1, with a reason in plain words for every unmet one: the
feedback the scripted proposer (scripted_proposer.py, `scripted/proposer`) acts on.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from p2engine.agents.turn import Turn, latest_turn, text_of
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


# --- instructions in the system prompt, obeyed in the final answer ------------------------
BULLETS_RE = re.compile(r"\bas a bullet list\b|\bone line per city\b", re.IGNORECASE)
FAHRENHEIT_RE = re.compile(r"\bin (?:fahrenheit\b|°F(?![A-Za-z]))", re.IGNORECASE)
BOTH_UNITS_RE = re.compile(r"\bin both units\b|\bcelsius and fahrenheit\b", re.IGNORECASE)
LENGTH_RE = re.compile(r"\b(?:at most|no more than|under) ([1-9]\d*) words\b", re.IGNORECASE)
CITE_RE = re.compile(r"\bcite the tool you used\b|\bname your source\b", re.IGNORECASE)
CELSIUS_RE = re.compile(r"(-?\d+(?:\.\d+)?)°C")
FAHRENHEIT_TEMPERATURE_RE = re.compile(r"-?\d+(?:\.\d+)?°F")
SOURCE_NOTE_RE = re.compile(r" \(source: ([^()]*)\)$")
SENTENCE_END_RE = re.compile(r"(?<=[.!?]) (?=[A-Z])")

Units = Literal["fahrenheit", "both"]


@dataclass(frozen=True)
class Instructions:
    """What the scripted model was told to do with its answer (see the module docstring);
    the defaults change nothing."""

    bullets: bool = False
    units: Units | None = None
    max_words: int | None = None
    cite: bool = False


def read_instructions(system: str) -> Instructions:
    """The instructions recognised in `system`: anything else in it is ignored."""
    units: dict[int, Units] = {m.start(): "fahrenheit" for m in FAHRENHEIT_RE.finditer(system)}
    units.update({m.start(): "both" for m in BOTH_UNITS_RE.finditer(system)})
    limits = [int(m.group(1)) for m in LENGTH_RE.finditer(system)]
    return Instructions(
        bullets=bool(BULLETS_RE.search(system)),
        units=units[max(units)] if units else None,  # the one written last
        max_words=min(limits, default=None),
        cite=bool(CITE_RE.search(system)),
    )


def answer_words(text: str) -> list[str]:
    """The words of an answer, as the length instruction and the judge count them: bullet
    dashes and a closing source note are not words of the answer."""
    text = SOURCE_NOTE_RE.sub("", text)
    return [word for line in text.split("\n") for word in line.removeprefix("- ").split()]


def obey(instructions: Instructions, facts: list[str], tools_used: list[str]) -> str:
    """The final answer made of `facts`, as `instructions` ask: format, units, length, then
    the citation, so the source note is never cut and counts no words."""
    text = "\n".join(f"- {f}" for f in facts) if instructions.bullets else " ".join(facts)
    if instructions.units is not None:
        text = CELSIUS_RE.sub(lambda m: _converted(m, instructions.units == "both"), text)
    if instructions.max_words is not None:
        text = _cut(text, instructions.max_words)
    if instructions.cite:
        text += f" (source: {', '.join(tools_used) or 'none'})"
    return text


def _converted(celsius: re.Match[str], keep_celsius: bool) -> str:
    fahrenheit = f"{math.floor(float(celsius.group(1)) * 9 / 5 + 32 + 0.5)}°F"
    return f"{celsius.group(0)} ({fahrenheit})" if keep_celsius else fahrenheit


def _cut(text: str, limit: int) -> str:
    """The first `limit` words of `text`, line by line, the last line ending with "." (and
    without a parenthesis the cut left open)."""
    if len(answer_words(text)) <= limit:
        return text
    lines: list[str] = []
    for line in text.split("\n"):
        if limit <= 0:
            break
        dash = "- " if line.startswith("- ") else ""
        words = line.removeprefix(dash).split()[:limit]
        limit -= len(words)
        lines.append(dash + " ".join(words))
    last = lines[-1]
    if last.count("(") > last.count(")") and last[: last.rfind("(")].strip(" -"):
        last = last[: last.rfind("(")]
    lines[-1] = last.rstrip(" ,;:.!?-") + "."
    return "\n".join(lines)


def _sentences(text: str) -> list[str]:
    """A plain answer's facts: its sentences, split so that joining them with one space
    gives the answer back unchanged."""
    return SENTENCE_END_RE.split(text)


def _tools_used(messages: list[dict[str, Any]]) -> list[str]:
    """Every tool the model called in the conversation, in the order of its first call."""
    names = [
        call["function"]["name"]
        for m in messages
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or []
    ]
    return list(dict.fromkeys(names))


GARBAGE_VERDICT = "It looks fine to me."


def judge_verdict(prompt: str, rubric: str = "") -> str:
    """The scripted judge's reply to a judge prompt (see the module docstring); `rubric` is
    the judge's system prompt, whose `features:` line, if any, says what to grade."""
    question, _, work = prompt.partition(f"\n\n{WORK_HEADING}")
    question = question.removeprefix(QUESTION_HEADING).strip()
    work = work.partition("\n")[2].strip()
    if "simulate judge garbage" in work.lower():
        return GARBAGE_VERDICT
    try:
        parts, reasons = _grade(rubric, question, work)
    except UnknownFeature as exc:
        return str(exc)
    if reasons is None:
        weak = [name for name, value in parts.items() if value < 1] or ["none"]
        rationale = f"scripted judge: weak on {', '.join(weak)}"
    else:
        unmet = "; ".join(reasons)
        rationale = f"scripted judge: {unmet}." if unmet else "scripted judge: meets every feature."
    return json.dumps({"score": _mean(parts), "rationale": rationale, "parts": parts})


def pair_verdict(prompt: str, rubric: str = "") -> str:
    """The scripted judge's reply to a pairwise prompt (see the module docstring)."""
    question, _, works = prompt.partition(f"\n\n{FIRST_HEADING}\n")
    question = question.removeprefix(QUESTION_HEADING).strip()
    first, _, second = works.partition(f"\n\n{SECOND_HEADING}\n")
    if "simulate judge garbage" in f"{first}\n{second}".lower():
        return GARBAGE_VERDICT
    try:
        a = _mean(_grade(rubric, question, first.strip())[0])
        b = _mean(_grade(rubric, question, second.strip())[0])
    except UnknownFeature as exc:
        return str(exc)
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


# --- rubric features: what a `features:` line in the rubric asks the judge to grade --------
# Each unmet feature's reason is said in plain words, as a change to the answer that the
# scripted proposer recognises (scripted_proposer.py) and turns into an instruction.
FEATURES_RE = re.compile(r"^features:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
WORD_LIMIT_FEATURE_RE = re.compile(r"^at_most_([1-9]\d*)_words$")
NO_SOURCE = "the answer does not name the tool it used as its source"
IN_CELSIUS = "the answer gives temperatures in °C, not °F"
NO_FAHRENHEIT = "the answer gives no temperature in °F"
NOT_BULLETS = "the answer is not a bullet list"
TOO_LONG = "the answer is {words} words long, more than {limit}"
TOO_LONG_RE = re.compile(r"the answer is \d+ words long, more than ([1-9]\d*)")

# A feature: the reason it is unmet, or None when it holds, from the question and the work.
Feature = Callable[[str, str], str | None]


class UnknownFeature(ValueError):
    """A rubric's features line names a feature the scripted judge cannot grade: its reply
    says so instead of a verdict, so the evaluation records an error, not a made-up score."""


def _cites_tool(question: str, work: str) -> str | None:
    note = SOURCE_NOTE_RE.search(work)
    return None if note and note.group(1).strip() not in ("", "none") else NO_SOURCE


def _fahrenheit(question: str, work: str) -> str | None:
    if CELSIUS_RE.search(work):
        return IN_CELSIUS
    return None if FAHRENHEIT_TEMPERATURE_RE.search(work) else NO_FAHRENHEIT


def _bullets(question: str, work: str) -> str | None:
    lines = [line for line in SOURCE_NOTE_RE.sub("", work).split("\n") if line.strip()]
    return None if lines and all(line.startswith("- ") for line in lines) else NOT_BULLETS


def _city_initial_in_first_half(question: str, work: str) -> str | None:
    """The control: a feature of the question alone, which no instruction can change."""
    asked = WEATHER_RE.search(question)
    cities = _cities(asked.group(1)) if asked else []
    if not cities:
        return "the question names no city"
    initial = cities[0][0].upper()
    if "A" <= initial <= "M":
        return None
    return f"the question's first city, {cities[0]}, does not start with a letter from A to M"


def _at_most(limit: int) -> Feature:
    def feature(question: str, work: str) -> str | None:
        words = len(answer_words(work))
        return None if words <= limit else TOO_LONG.format(words=words, limit=limit)

    return feature


JUDGE_FEATURES: dict[str, Feature] = {
    "cites_tool": _cites_tool,
    "fahrenheit": _fahrenheit,
    "bullets": _bullets,
    "city_initial_in_first_half": _city_initial_in_first_half,
}  # and at_most_<N>_words, for any N >= 1


def _feature(name: str) -> Feature:
    if limit := WORD_LIMIT_FEATURE_RE.match(name):
        return _at_most(int(limit.group(1)))
    if name not in JUDGE_FEATURES:
        known = ", ".join([*JUDGE_FEATURES, "at_most_<N>_words"])
        raise UnknownFeature(f"scripted judge: unknown feature '{name}' (known: {known})")
    return JUDGE_FEATURES[name]


def _grade(rubric: str, question: str, work: str) -> tuple[dict[str, float], list[str] | None]:
    """The parts and the unmet features' reasons by the rubric's features line, or by the
    four default features (no reasons: None) when it has none."""
    line = FEATURES_RE.search(rubric)
    if line is None:
        return _features(question, work), None
    names = [name.strip() for name in line.group(1).split(",") if name.strip()]
    if not names:
        raise UnknownFeature("scripted judge: the rubric's features line names no feature")
    reasons = {name: _feature(name)(question, work) for name in names}
    parts = {name: 0.0 if reason else 1.0 for name, reason in reasons.items()}
    return parts, [reason for reason in reasons.values() if reason]


def _mean(parts: dict[str, float]) -> float:
    return round(sum(parts.values()) / len(parts), 3)


def respond(messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]) -> ScriptedReply:
    """Decide the next reply from the transcript and the tools offered (name -> function
    schema). Weather and delegation use only offered tools; an explicit "call TOOL with
    {json}" is obeyed literally, as a model that invents a tool would. A final answer obeys
    the instructions in the system messages."""
    first = messages[0] if messages else {}
    system = str(first.get("content", "")) if first.get("role") == "system" else ""
    for marker, verdict in ((JUDGE_MARKER, judge_verdict), (PAIR_MARKER, pair_verdict)):
        if system.startswith(marker):
            prompt = next((m for m in messages if m.get("role") == "user"), {}).get("content", "")
            return ScriptedReply(text=verdict(str(prompt), system))
    move = _next_move(messages, tools)
    if isinstance(move, ScriptedReply):
        return move
    told = read_instructions("\n".join(text_of(m) for m in messages if m.get("role") == "system"))
    return ScriptedReply(text=obey(told, move, _tools_used(messages)))


def _next_move(
    messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
) -> ScriptedReply | list[str]:
    """Tool calls, or the facts of the final answer (see respond)."""
    turn = latest_turn(messages)
    if turn.question is None:
        return ["I have no question to answer."]
    question, results = turn.question, turn.results

    if not results and (error := ERROR_RE.search(question)):
        raise ScriptedFailure(int(error.group(1)))

    def call(
        name: str, arguments: dict[str, Any] | str, *, offered_only: bool
    ) -> ScriptedReply | list[str]:
        if offered_only and name not in tools:
            return [f"I cannot do that: I have no '{name}' tool."]
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
        return _answer_lines(turn)
    return _sentences(_plain_answer(question))


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)
