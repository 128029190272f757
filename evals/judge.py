"""The LLM judge: a rubric, a model (any litellm string) and a verdict the model returns as
JSON, `{"score": 0..1, "rationale": "...", "parts": {"name": 0..1}}`, validated as a Score.
The pairwise judge is shown two answers, A and B, and replies `{"winner": "A" | "B" | "tie",
"rationale": "..."}`: a preference for A of 1, 0 or 0.5.

A reply that is not a valid verdict is answered with a nudge naming the problem and asked
again, up to `attempts` times; then the evaluation records the error (EvaluationError) and
the conversation goes on. The model call itself is the worker's (`EvalTarget.complete`), so
this package never imports litellm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from p2engine.contract.errors import ConfigError, first_problem, read_config_text
from p2engine.contract.evals import (
    FIRST_HEADING,
    JUDGE_MARKER,
    PAIR_MARKER,
    QUESTION_HEADING,
    SECOND_HEADING,
    WORK_HEADING,
    Score,
    Unit,
)
from p2engine.evals.registry import Complete, EvalTarget, EvaluationError, PairTarget
from p2engine.evals.rules import RuleParams

R = TypeVar("R", bound=BaseModel)
RUBRIC_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
DEFAULT_JUDGE_MODEL = "scripted/judge"
FORMAT = (
    'Reply with one JSON object and nothing else: {"score": <a number from 0 to 1>, '
    '"rationale": "<one or two sentences>", "parts": {"<criterion>": <0 to 1>, ...}}.'
)
PAIR_FORMAT = (
    'Reply with one JSON object and nothing else: {"winner": "A", "B" or "tie", '
    '"rationale": "<one or two sentences>"}.'
)


class Verdict(BaseModel):
    """What a judge must reply, as the prompt asks for it."""

    score: Unit
    rationale: str = ""
    parts: dict[str, Unit] = {}


class Preference(BaseModel):
    """What a pairwise judge must reply."""

    winner: Literal["A", "B", "tie"]
    rationale: str = ""


class Judge(RuleParams):
    rubric: str = Field(min_length=1, description="a rubric id (rubrics/<id>.md) or its text")
    model: str = DEFAULT_JUDGE_MODEL
    attempts: int = Field(default=3, ge=1, le=5)


def rubric_text(rubric: str, rubrics_dir: Path) -> str:
    """An id names `rubrics_dir/<id>.md`, which must exist; anything else is the rubric."""
    if not RUBRIC_ID.match(rubric):
        return rubric
    text = read_config_text(rubrics_dir / f"{rubric}.md", "rubric").strip()
    if not text:
        raise ConfigError(f"{rubrics_dir / f'{rubric}.md'}: the rubric is empty")
    return text


def judge_messages(rubric: str, target: EvalTarget) -> list[dict[str, str]]:
    work = f"{WORK_HEADING} ({target.kind}, step {target.step})\n{target.text}"
    return _messages(JUDGE_MARKER, rubric, FORMAT, target.question, work)


def _messages(
    marker: str, rubric: str, reply_format: str, question: str, work: str
) -> list[dict[str, str]]:
    """A judge's prompt: the marker, the rubric and the reply's format; then the question
    and the work."""
    system = f"{marker}\n\nRubric:\n{rubric}\n\n{reply_format}"
    user = f"{QUESTION_HEADING}\n{question or '(none)'}\n\n{work}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _reply_as(model: type[R], reply: str) -> R:
    """A judge's reply (a JSON object, maybe inside a code fence) as `model`, or a
    ValueError saying what is wrong with it."""
    text = reply.strip()
    if fenced := re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL):
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not a JSON object") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None


def parse_verdict(reply: str) -> Score:
    """The Score in a judge's reply, or a ValueError saying what is wrong with it."""
    verdict = _reply_as(Verdict, reply)
    return Score(value=verdict.score, rationale=verdict.rationale, parts=verdict.parts)


def judge(params: Judge, rubric: str) -> Callable[[EvalTarget], Awaitable[Score]]:
    async def score(target: EvalTarget) -> Score:
        messages = judge_messages(rubric, target)
        return await _ask(params, target.complete, messages, parse_verdict, FORMAT)

    return score


def pairwise_judge(params: Judge, rubric: str) -> Callable[[PairTarget], Awaitable[Score]]:
    async def compare(target: PairTarget) -> Score:
        messages = pair_messages(rubric, target)
        return await _ask(params, target.complete, messages, parse_preference, PAIR_FORMAT)

    return compare


def pair_messages(rubric: str, target: PairTarget) -> list[dict[str, str]]:
    works = f"{FIRST_HEADING}\n{target.first}\n\n{SECOND_HEADING}\n{target.second}"
    return _messages(PAIR_MARKER, rubric, PAIR_FORMAT, target.question, works)


def parse_preference(reply: str) -> Score:
    """The preference for work A in a pairwise judge's reply, or a ValueError."""
    verdict = _reply_as(Preference, reply)
    value = {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict.winner]
    return Score(value=value, rationale=verdict.rationale)


async def _ask(
    params: Judge,
    complete: Complete | None,
    messages: list[dict[str, str]],
    parse: Callable[[str], Score],
    reply_format: str,
) -> Score:
    """Ask the judge model, and again with a nudge naming the problem while its reply does
    not parse, up to `params.attempts` times."""
    if complete is None:
        raise EvaluationError("no model to judge with in this process")
    problem = ""
    for _ in range(params.attempts):
        reply = await complete(params.model, messages)
        try:
            return parse(reply)
        except ValueError as exc:
            problem = str(exc)
        messages = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": f"That is not a valid verdict ({problem}). {reply_format}"},
        ]
    raise EvaluationError(
        f"judge {params.model} gave no valid verdict in {params.attempts} attempts: {problem}"
    )
