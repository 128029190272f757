"""What an evaluation says, as it crosses from the evaluation activity to the workflow and
into the store: a score in 0..1 with its reasons, or the error that kept it from one."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Which nodes an evaluator scores: every model step's output, every tool result, or only
# the conversation's final answer.
Trigger = Literal["step", "tool", "final"]


Unit = Annotated[float, Field(ge=0, le=1)]


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Unit
    rationale: str = ""
    parts: dict[str, Unit] = Field(default={}, description="named sub-scores")


class EvaluatorInfo(BaseModel):
    """What the workflow needs to know about an evaluator to decide what it scores; the
    registry that runs it lives in the worker."""

    id: str
    version: str
    trigger: Trigger


class Evaluation(BaseModel):
    """One evaluator's verdict on one node, stored in the artifact store beside it."""

    kind: Literal["Evaluation"] = "Evaluation"
    target: str
    conversation_id: str
    step: int
    agent_id: str
    evaluator_id: str
    version: str
    score: Score | None = None
    error: str | None = Field(default=None, description="why there is no score")


class EvalOutcome(BaseModel):
    """What the workflow keeps of an evaluation: the score, and the ref of the whole record."""

    evaluator_id: str
    version: str
    ref: str | None = Field(default=None, description="None when the activity itself failed")
    value: float | None = None
    error: str | None = None


# The first line of an LLM judge's system prompt; the offline scripted model answers a
# conversation that starts with it as a judge (agents/scripted.py).
JUDGE_MARKER = "You grade one piece of an AI agent's work."
QUESTION_HEADING = "QUESTION:"
WORK_HEADING = "WORK:"
