"""What an evaluation says, as it crosses from the evaluation activity to the workflow and
into the store: a score in 0..1 with its reasons, or the error that kept it from one."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from p2engine.contract.usage import Usage

CENT = Decimal("0.01")

# Which nodes an evaluator scores: every model step's output, every tool result, or only
# the conversation's final answer.
Trigger = Literal["step", "tool", "final"]


Unit = Annotated[float, Field(ge=0, le=1)]


class Score(BaseModel):
    """What an evaluator returns: a value in 0..1, why, and optional named sub-scores."""

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
    quick: bool = Field(
        default=False,
        description="scores in the worker within milliseconds, with no model or network call",
    )


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
    usage: Usage | None = Field(default=None, description="what its model calls spent, if any")


class EvalOutcome(BaseModel):
    """What the workflow keeps of an evaluation: the score, and the ref of the whole record."""

    evaluator_id: str
    version: str
    ref: str | None = Field(default=None, description="None when the activity itself failed")
    value: float | None = None
    error: str | None = None
    reward: RewardOutcome | None = None
    usage: Usage | None = Field(default=None, description="what its model calls spent, if any")


# The first line of an LLM judge's system prompt; the offline scripted model answers a
# conversation that starts with it as a judge (agents/scripted.py).
JUDGE_MARKER = "You grade one piece of an AI agent's work."
QUESTION_HEADING = "QUESTION:"
WORK_HEADING = "WORK:"
# The same for a pairwise judge, which sees two works under these headings.
PAIR_MARKER = "You compare two pieces of AI agents' work."
FIRST_HEADING = "WORK A:"
SECOND_HEADING = "WORK B:"


# --- pairwise comparison -----------------------------------------------------------------
# A pairwise evaluator scores the preference for the work it is shown first: 1 when that
# one is better, 0 when the other is, 0.5 for a tie. Which of A and B goes first is drawn
# by the workflow (`workflow.random()`), so a judge's bias for a position averages out over
# comparisons; every score kept is A's.

Winner = Literal["a", "b", "tie"]


def preference_for_a(first: float, swapped: bool) -> float:
    """A's preference from the preference for the work shown first (B, when `swapped`)."""
    return 1.0 - first if swapped else first


def winner_of(preference: float) -> Winner:
    """Who a preference for A names the winner."""
    return "a" if preference > 0.5 else "b" if preference < 0.5 else "tie"


class PairSide(BaseModel):
    """One of the two works compared: a conversation's answer."""

    conversation_id: str
    ref: str = Field(description="its answer's node")


class PairInput(BaseModel):
    """What to compare: two answers to the same question, by one pairwise evaluator."""

    evaluator_id: str
    question: str = Field(description="the ref of the user message both answer")
    a: PairSide
    b: PairSide


class PairRequest(PairInput):
    swapped: bool = Field(description="whether B is shown first")


class Comparison(BaseModel):
    """One pairwise verdict, stored in the artifact store; `score` is A's preference, its
    rationale the judge's words about the works as shown (B first when `swapped`)."""

    kind: Literal["Comparison"] = "Comparison"
    question: str
    a: PairSide
    b: PairSide
    evaluator_id: str
    version: str
    swapped: bool
    score: Score | None = None
    error: str | None = Field(default=None, description="why there is no verdict")
    usage: Usage | None = Field(default=None, description="what its model calls spent, if any")


class PairOutcome(BaseModel):
    """What a comparison returns: A's preference (None with an error), and the record's ref."""

    evaluator_id: str
    version: str
    ref: str | None = None
    value: Unit | None = None
    winner: Winner | None = None
    swapped: bool
    error: str | None = None
    usage: Usage | None = None


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: Unit
    amount: Decimal = Field(gt=0, decimal_places=2)


class RewardPolicy(BaseModel):
    """How scores pay the agent: the highest threshold a score reaches, or `per_point` times
    the score, paid from `payer` (empty: the ledger's treasury) until `budget` is spent."""

    model_config = ConfigDict(extra="forbid")

    payer: str = ""
    budget: Decimal = Field(gt=0, decimal_places=2, description="per conversation")
    evaluators: list[str] = Field(default=[], description="whose scores pay; empty: every one")
    thresholds: list[Threshold] = []
    per_point: Decimal | None = Field(default=None, gt=0, decimal_places=2)

    @model_validator(mode="after")
    def _one_rule(self) -> RewardPolicy:
        if bool(self.thresholds) == (self.per_point is not None):
            raise ValueError("give either thresholds or per_point")
        return self

    def amount(self, score: float) -> Decimal:
        """What `score` earns, in cents, rounded down."""
        if self.per_point is not None:
            return (self.per_point * Decimal(str(score))).quantize(CENT, rounding=ROUND_DOWN)
        reached = [t.amount for t in self.thresholds if score >= t.min]
        return max(reached, default=Decimal(0))


RewardStatus = Literal["paid", "skipped", "failed"]


class RewardOutcome(BaseModel):
    """What an evaluation paid, or why it did not."""

    status: RewardStatus
    amount: Decimal
    transfer_id: str = ""
    reason: str = ""


EvalOutcome.model_rebuild()
