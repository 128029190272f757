"""The LLM judge: a rubric, a model (any litellm string) and a verdict the model returns as
JSON, `{"score": 0..1, "rationale": "...", "parts": {"name": 0..1}}`, validated as a Score.

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

from pydantic import BaseModel, Field, ValidationError

from contract.errors import ConfigError, first_problem, read_config_text
from contract.evals import JUDGE_MARKER, QUESTION_HEADING, WORK_HEADING, Score, Unit
from evals.registry import EvalTarget, EvaluationError
from evals.rules import RuleParams

RUBRIC_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
DEFAULT_JUDGE_MODEL = "scripted/judge"
FORMAT = (
    'Reply with one JSON object and nothing else: {"score": <a number from 0 to 1>, '
    '"rationale": "<one or two sentences>", "parts": {"<criterion>": <0 to 1>, ...}}.'
)


class Verdict(BaseModel):
    """What a judge must reply, as the prompt asks for it."""

    score: Unit
    rationale: str = ""
    parts: dict[str, Unit] = {}


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
    system = f"{JUDGE_MARKER}\n\nRubric:\n{rubric}\n\n{FORMAT}"
    user = (
        f"{QUESTION_HEADING}\n{target.question or '(none)'}\n\n"
        f"{WORK_HEADING} ({target.kind}, step {target.step})\n{target.text}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_verdict(reply: str) -> Score:
    """The Score in a judge's reply (a JSON object, maybe inside a code fence), or a
    ValueError saying what is wrong with it."""
    text = reply.strip()
    if fenced := re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL):
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not a JSON object") from None
    try:
        verdict = Verdict.model_validate(data)
    except ValidationError as exc:
        raise ValueError(first_problem(exc)) from None
    return Score(value=verdict.score, rationale=verdict.rationale, parts=verdict.parts)


def judge(params: Judge, rubric: str) -> Callable[[EvalTarget], Awaitable[Score]]:
    async def score(target: EvalTarget) -> Score:
        if target.complete is None:
            raise EvaluationError("no model to judge with in this process")
        messages = judge_messages(rubric, target)
        problem = ""
        for _ in range(params.attempts):
            reply = await target.complete(params.model, messages)
            try:
                return parse_verdict(reply)
            except ValueError as exc:
                problem = str(exc)
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"That is not a valid verdict ({problem}). {FORMAT}"},
            ]
        raise EvaluationError(
            f"judge {params.model} gave no valid verdict in {params.attempts} attempts: {problem}"
        )

    return score
