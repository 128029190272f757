"""What `p2e learn` reads and what its LearningWorkflow carries and returns.

A learn file names an agent, a dataset of tasks split by a seed into train, validation and
test, the evaluator whose score is the metric, the knobs the learner may turn, a budget
and how the best config propagates. Each generation runs candidate configs as rollouts
(workflows/learning.py); every number it reports is a rollout's, so it can be inspected,
replayed and compared like any other.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.models import Catalog
from p2engine.contract.rollouts import Estimate

LEARN_WORKFLOW = "LearningWorkflow"
LEARN_PREFIX = "learn-"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Split(_Strict):
    """The share of the dataset each part gets; what is left after train and validation is
    the test part, held out until the end."""

    train: float = Field(default=0.5, gt=0, lt=1)
    validation: float = Field(default=0.25, gt=0, lt=1)

    @model_validator(mode="after")
    def _room_for_test(self) -> Split:
        if self.train + self.validation >= 1:
            raise ValueError("train and validation leave nothing for the test part")
        return self


class Dataset(_Strict):
    """The tasks: messages inline, or a JSONL file beside the learn file (one
    {"message": ...} per line)."""

    inputs: list[str] = []
    file: str | None = None
    split: Split = Split()

    @model_validator(mode="after")
    def _one_source(self) -> Dataset:
        if bool(self.inputs) == (self.file is not None):
            raise ValueError("give inputs or a file, one of the two")
        return self


class Knobs(_Strict):
    """What the learner may change; anything unnamed stays as the agent has it."""

    system_prompt: bool = Field(default=True, description="the proposer rewrites the prompt")
    models: list[str] = Field(default=[], description="models a candidate may switch to")
    temperature: tuple[float, float] | None = Field(default=None, description="a range")
    tools: list[str] | None = Field(default=None, description="tools a candidate may keep")

    @field_validator("temperature")
    @classmethod
    def _a_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1] <= 2:
            raise ValueError("a temperature range is [low, high] within 0..2")
        return value


class Budget(_Strict):
    generations: int = Field(default=3, ge=1, le=100)
    minibatch: int = Field(default=4, ge=1, description="train tasks a candidate runs on")
    max_arms: int = Field(default=2000, ge=1, description="every arm of every rollout")
    max_usd: float | None = Field(default=None, gt=0, description="every arm and proposal")


class EveryN(_Strict):
    """Propagation during a generation: its train rollout runs the parent beside the next
    best candidates, and every `every` model steps the best of them so far is pushed to the
    weaker running ones (workflows/propagation.py, activities/propagation.py)."""

    every: int = Field(ge=1, description="model steps between pushes of the best config")
    siblings: int = Field(default=3, ge=2, le=8, description="candidates run side by side")


def _propagation_kind(value: object) -> str:
    return "mode[every]" if isinstance(value, dict | EveryN) else "mode[end]"


# `end`, or `{every: N}`: told apart by shape, so a mistake in either is said of that one
# (the tags hold "[", which a located error drops, as it drops a union member's name).
Propagation = Annotated[
    Annotated[Literal["end"], Tag("mode[end]")] | Annotated[EveryN, Tag("mode[every]")],
    Discriminator(_propagation_kind),
]


class LearnSpec(_Strict):
    agent: str
    dataset: Dataset
    seed: int = 0
    evaluator: str = Field(description="the evaluator whose score is the metric")
    knobs: Knobs = Knobs()
    budget: Budget = Budget()
    propagation: Propagation = "end"
    test_repeats: int = Field(default=3, ge=1, le=100)
    concurrency: int = Field(default=8, ge=1, le=256)
    proposer_model: str = "scripted/proposer"


class Tasks(_Strict):
    """The dataset as split: each task once, in one part only."""

    train: list[str]
    validation: list[str]
    test: list[str]


class Candidate(_Strict):
    """A config the learner made: from which parent, what changed, and why. Stored in the
    artifact store as it is (`record`), so its lineage reads back by ref."""

    kind: Literal["AgentConfig"] = "AgentConfig"
    id: str = Field(default="", description="the config's id, filled in from it")
    config: AgentConfig
    parent: str | None = Field(default=None, description="the parent config's id")
    generation: int = 0
    changes: dict[str, object] = {}
    why: str = ""
    record: str | None = Field(default=None, description="the ref of this record in the store")

    @model_validator(mode="after")
    def _named(self) -> Candidate:
        self.id = self.config.id
        return self

    def as_stored(self) -> str:
        """The record as the store keeps it: everything but its own ref."""
        return self.model_dump_json(exclude={"record"})


def baseline_candidate(config: AgentConfig, record: str | None = None) -> Candidate:
    """The first candidate: the agent as agents.yml has it."""
    return Candidate(config=config, why="the agent as agents.yml has it", record=record)


class Proposal(_Strict):
    """What the proposer made of a parent: a candidate, or why it made none."""

    candidate: Candidate | None = None
    failed: str | None = None
    usage_usd: float = 0.0
    tokens: int = 0


class Feedback(_Strict):
    """One train task as the proposer sees it: the task, the reply and the judge's reasons."""

    task: str
    reply: str
    score: float | None
    reasons: str


class Scored(_Strict):
    """A rollout of configs digested: each config's score per task, mean and interval, what
    it spent, and the weakest tasks with their feedback."""

    per_task: dict[str, dict[str, float]] = Field(description="config id -> task -> score")
    estimates: dict[str, Estimate] = Field(description="config id -> mean score")
    usd: float = 0.0
    tokens: int = 0
    weakest: dict[str, list[Feedback]] = Field(default={}, description="config id -> worst")


# The examples a proposal reads: the lowest-scoring tasks of the parent.
WEAKEST = 4


class DigestInput(_Strict):
    records_ref: str
    tasks: list[str] = Field(description="the rollout's inputs: a record's case indexes them")
    weakest: int = WEAKEST


class ProposeInput(_Strict):
    parent: Candidate
    feedback: list[Feedback]
    model: str
    knobs: Knobs
    generation: int
    seed: int


class SiblingArm(_Strict):
    """A running arm of a propagating rollout: its conversation and the config it started
    with."""

    workflow_id: str
    config: AgentConfig


class PropagateInput(_Strict):
    arms: list[SiblingArm]
    poll_s: float = Field(default=0.5, gt=0)


class Push(_Strict):
    """One push of the best config to a weaker running arm, as that arm recorded it."""

    round: int
    arm: str = Field(description="the conversation pushed to")
    source: str = Field(description="the config pushed")
    started_as: str = Field(description="the config the arm started with")
    knobs: list[str] = Field(description="the knobs it changed")


class Generation(_Strict):
    number: int
    parent: str
    proposal: str | None = Field(default=None, description="the new candidate's id")
    failed: str | None = Field(default=None, description="why the proposal was not usable")
    train: Estimate | None = Field(default=None, description="the parent on the minibatch")
    validation: Estimate | None = Field(default=None, description="the new candidate")
    rollouts: list[str] = []
    siblings: list[str] = Field(default=[], description="configs run beside the parent")
    pushes: list[Push] = Field(default=[], description="propagation every N steps")


class HeldOutComparison(_Strict):
    """The best candidate against the baseline on the held-out test tasks, paired."""

    baseline: Estimate
    best: Estimate
    difference: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    effect_size: float | None
    pairs: int
    rollout: str


class LearnInput(_Strict):
    name: str
    spec: LearnSpec
    tasks: Tasks
    catalog: Catalog
    baseline: AgentConfig
    baseline_record: str | None = Field(default=None, description="its record in the store")
    revision: int = 0
    store_id: str | None = None
    ledger: str | None = Field(default=None, description="why its rollouts have no ledger")
    resume: LearnState | None = None


class LearnState(_Strict):
    baseline_validation: Estimate | None = None
    candidates: list[Candidate] = []
    validation: dict[str, dict[str, float]] = Field(default={}, description="id -> task -> score")
    generations: list[Generation] = []
    usd: float = 0.0
    tokens: int = 0
    arms: int = 0


class LearnResult(_Strict):
    learn_id: str
    name: str
    baseline: str
    best: str
    candidates: list[Candidate]
    generations: list[Generation]
    pareto: list[str] = Field(description="candidates no other beats on every validation task")
    baseline_validation: Estimate | None = Field(default=None, description="generation 0")
    test: HeldOutComparison | None
    improved: bool
    verdict: str
    usd: float
    tokens: int
    arms: int


LearnInput.model_rebuild()
