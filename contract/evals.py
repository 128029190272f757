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
