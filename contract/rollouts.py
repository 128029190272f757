"""A rollout file, validated: teams of variants of an agent, each run `repeats` times on the
same inputs, so that the variants can be compared case by case.

The shape is the original P2Engine's (`teams: {team: {initial_message, base, variants,
eval}}`), so its files run unchanged; `repeats`, `concurrency`, `seed`, `budget`,
`baseline` and `inputs` are ours. Keys the original knew that mean nothing here are kept
aside as warnings (ORIGINAL_ONLY); any other unknown key is an error.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import KNOBS, ConfigPatch
from p2engine.contract.evals import RewardPolicy
from p2engine.contract.models import Catalog, Propagation
from p2engine.contract.routing import Routing

DEFAULT_MAX_ARMS = 10_000

# What a variant may set, over its team's `base`: the agent's knobs, and its first message.
# `behavior_template` is the original's name for a persona.
AGENT_KEYS = (
    "agent_id", "model", "temperature", "top_p", "max_tokens", "tools", "persona", "system_prompt"
)  # fmt: skip
VARIANT_KEYS = frozenset({*AGENT_KEYS, "behavior_template", "initial_message", "id"})

# Keys of the original's files that have no meaning here: accepted, each with a warning.
ORIGINAL_ONLY = {
    "prompts": "the original only used it to decide whether to judge; an evaluator is named",
    "judge_version": "an evaluator's version is its own (config/evals.yml)",
    "strict_tools": "tools are always checked against the registry",
    "rubric": "an evaluator's rubric is its own (config/evals.yml); name the evaluator",
}


# The figures of an arm a comparison can rank by, and whether more is better.
METRICS: dict[str, bool] = {
    "score": True,
    "reward": True,
    "net_flow": True,
    "tokens": False,
    "cost_usd": False,
    "latency_s": False,
    "steps": False,
    "tool_calls": False,
    "transactions": False,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    """A variant, or a team's `base`: what it sets on the agent and the first message."""

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    agent_id: str | None = None
    model: str | None = Field(default=None, min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    tools: list[str] | None = None
    persona: str | None = None
    behavior_template: str | None = Field(default=None, description="the original's persona")
    system_prompt: str | None = Field(default=None, description="instructions")
    initial_message: str | None = Field(default=None, min_length=1)

    @field_validator("system_prompt")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a system_prompt has text; leave it out to keep the agent's")
        return value

    @model_validator(mode="after")
    def _one_persona(self) -> Variant:
        if self.persona is not None and self.behavior_template is not None:
            raise ValueError("give persona or behavior_template, not both")
        return self

    def over(self, base: Variant) -> Variant:
        """This variant's settings over `base`'s."""
        mine = self.model_dump(exclude_none=True)
        return Variant.model_validate({**base.model_dump(exclude_none=True), **mine})

    def patch(self) -> ConfigPatch:
        """What this variant changes on its agent's config (`behavior_template` is the
        original's name for the persona)."""
        knobs = self.model_dump(include=set(KNOBS), exclude_none=True)
        if self.behavior_template is not None:
            knobs["persona"] = self.behavior_template
        return ConfigPatch.model_validate(knobs)


class TeamEval(_Strict):
    evaluator_id: str | None = None
    metric: str = Field(default="score", description="what the comparison ranks by (METRICS)")
    timeout_sec: float = Field(default=900, gt=0, description="an arm running longer fails")
    pass_score: float = Field(default=0.5, ge=0, le=1, description="a score that passes")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric '{metric}'; metrics: {', '.join(METRICS)}")
        return metric


class Team(_Strict):
    initial_message: str | None = Field(default=None, min_length=1)
    base: Variant
    variants: list[Variant] | dict[str, list[Any]] = Field(min_length=1)
    eval: TeamEval | None = None

    @field_validator("variants")
    @classmethod
    def _grid(cls, variants: list[Variant] | dict[str, list[Any]]) -> Any:
        if isinstance(variants, dict):
            for key, values in variants.items():
                if key not in VARIANT_KEYS - {"id"}:
                    raise ValueError(f"grid key '{key}' is no variant setting")
                if not values:
                    raise ValueError(f"grid key '{key}' has no values")
        return variants


class RolloutSpec(_Strict):
    teams: dict[str, Team] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1, description="runs per variant and input")
    concurrency: int = Field(default=10, ge=1, le=1000)
    seed: int = 0
    budget: Decimal | None = Field(default=None, gt=0, description="USD for the whole rollout")
    baseline: str | None = Field(default=None, description="a variant id: team/variant or variant")
    inputs: list[str] | str | None = Field(
        default=None, description='messages, or a JSONL file of {"message": ...} beside it'
    )
    max_arms: int = Field(default=DEFAULT_MAX_ARMS, ge=1)

    @property
    def metric(self) -> str:
        """What the comparison ranks by: the first team's `eval.metric` that sets one."""
        return next((t.eval.metric for t in self.teams.values() if t.eval), "score")


class Arm(BaseModel):
    """One conversation of the rollout: a variant on one input, one repeat."""

    key: str = Field(description="<team>/<variant>/r<n>: its part of the conversation's id")
    team: str
    variant: str
    order: int = Field(default=0, description="the variant's place among all teams' variants")
    case: int = Field(description="the input's index: arms of one case are compared in pairs")
    repeat: int
    agent: AgentSpec
    config: str = Field(default="", description="the id of the config it runs")
    message: str


# --- running a rollout -------------------------------------------------------------------

ArmStatus = Literal["done", "failed", "cancelled", "skipped"]
Phase = Literal["running", "settling", "done", "cancelled"]

# Arms a run of the rollout workflow starts before it continues as new: its history stays
# well under Temporal's limits (about 3 events per arm plus the tasks between them).
ARMS_PER_RUN = 500


class ArmRecord(BaseModel):
    """What one arm did: the figures a comparison reads, and why it failed if it did.

    `transactions` and `net_flow` come from the ledger when the rollout settles; the arm's
    agent's wallet may be shared with other arms, so they count the arm's own transfers
    (those whose reference is the arm's conversation or a child of it), not balances.
    """

    key: str
    team: str
    variant: str
    case: int
    repeat: int
    order: int = Field(default=0, description="the variant's place in the file")
    case_id: str = Field(description="a hash of the case's message: equal ones can be paired")
    agent_id: str
    workflow_id: str
    status: ArmStatus
    reason: str | None = Field(default=None, description="the conversation's finish reason")
    error: str | None = None
    score: float | None = Field(default=None, description="the team's metric, if it scored")
    passed: bool = Field(default=False, description="done, and the score reached pass_score")
    reward: Decimal = Decimal(0)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    latency_s: float = 0.0
    steps: int = 0
    tool_calls: int = 0
    transactions: int = 0
    net_flow: Decimal = Decimal(0)
    config: str = Field(default="", description="the id of the agent config the arm ran")
    reply_ref: str | None = Field(default=None, description="the arm's last answer")
    eval_refs: list[str] = Field(default=[], description="its team evaluator's records")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def value(self, metric: str) -> float | None:
        """The arm's figure for `metric` (METRICS); None for a score it never got."""
        if metric == "score":
            return self.score
        if metric == "tokens":
            return float(self.tokens)
        return float(getattr(self, metric))

    @property
    def variant_key(self) -> str:
        return f"{self.team}/{self.variant}"


class VariantTally(BaseModel):
    """The running totals of one variant, for the progress query and the live table. Sums,
    not means, so they add up across runs; the CLI turns them into means and intervals."""

    team: str
    variant: str
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    scored: int = 0
    score_sum: float = 0.0
    score_squares: float = 0.0
    passed: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    reward: Decimal = Decimal(0)

    @property
    def key(self) -> str:
        return f"{self.team}/{self.variant}"

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped + self.cancelled


class RolloutState(BaseModel):
    """What the rollout workflow carries across continue-as-new: where the expansion has got
    to, the tallies, and the records of earlier runs (stored, by ref)."""

    next_arm: int = 0
    started_at: datetime | None = None
    before: dict[str, Decimal] = Field(default={}, description="wallet balances at the start")
    tallies: list[VariantTally] = []
    records: list[ArmRecord] = Field(default=[], description="finished in this run")
    stored: list[str] = Field(default=[], description="refs of earlier runs' records (JSONL)")
    spent_usd: float = 0.0
    runs: int = 1


class RolloutInput(BaseModel):
    """A rollout as its workflow runs it: the checked spec and everything the arms need, so
    the workflow expands the same arms on every replay."""

    name: str = Field(description="what the file is called, for lists and summaries")
    spec: RolloutSpec
    inputs: list[str] = []
    catalog: Catalog
    model: str | None = Field(default=None, description="replaces every arm's model")
    revision: int = Field(default=0, description="the conversation revision arms start with")
    rewards: RewardPolicy | None = None
    continue_as_new_events: int | None = None
    arms_per_run: int = Field(default=ARMS_PER_RUN, ge=1)
    ledger: str | None = Field(
        default=None, description="why there are no ledger figures: no ledger could be read"
    )
    resume: RolloutState | None = None
    store_id: str | None = Field(default=None, description="the store its arms' content is in")
    routing: Routing | None = Field(default=None, description="its arms' task queues")
    propagation: Propagation | None = Field(default=None, description="a learning run's")


class RolloutProgress(BaseModel):
    rollout_id: str
    name: str
    phase: Phase
    total: int
    started: int
    running: int
    variants: list[VariantTally]
    runs: int = 1

    @property
    def finished(self) -> int:
        return sum(t.finished for t in self.variants)


# --- comparing variants -------------------------------------------------------------------

IntervalMethod = Literal["t", "bootstrap"]


class Estimate(BaseModel):
    """A mean and its 95% interval (no bounds from fewer than two values)."""

    mean: float
    low: float | None = None
    high: float | None = None
    n: int
    method: IntervalMethod


class AgainstBaseline(BaseModel):
    """A variant against the baseline on the metric: the difference (variant - baseline)
    with its interval, a p-value, the same p corrected for all variants (Holm), an effect
    size, and for pass/fail the exact McNemar test when the arms are paired."""

    paired: bool = Field(description="the same cases and repeats, compared one by one")
    n: int
    difference: Estimate | None = None
    test: Literal["wilcoxon", "welch"] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    effect_size: float | None = Field(default=None, description="Cohen's d_z paired, else d")
    mcnemar_p: float | None = None
    mcnemar_holm: float | None = None
    significant: bool = Field(default=False, description="p_holm below 0.05")
    reachable_p: float | None = Field(
        default=None, description="the smallest p_holm this many pairs could give at all"
    )

    @property
    def underpowered(self) -> bool:
        """Too few pairs for the test to reach 0.05, whatever the values."""
        return self.reachable_p is not None and self.reachable_p >= 0.05


class VariantStats(BaseModel):
    """One variant's arms summed up: outcomes, the metric's estimate, cost, and the
    comparison with the baseline."""

    team: str
    variant: str
    arms: int
    done: int
    failed: int
    skipped: int = 0
    cancelled: int = 0
    success_rate: float
    metric: Estimate | None = None
    tokens: float = Field(default=0, description="mean per arm")
    cost_usd: float = Field(default=0, description="mean per arm, judges included")
    latency_s: float = Field(default=0, description="mean per arm")
    transactions: int = Field(default=0, description="all arms")
    net_flow: Decimal = Field(default=Decimal(0), description="all arms")
    reward: Decimal = Field(default=Decimal(0), description="all arms")
    errors: list[str] = Field(default=[], description="distinct errors of failed arms")
    versus: AgainstBaseline | None = None

    @property
    def key(self) -> str:
        return f"{self.team}/{self.variant}"


class VariantComparison(BaseModel):
    """Every variant of a rollout on one metric, each against the baseline when one is set."""

    metric: str
    baseline: str | None
    seed: int = Field(default=0, description="what the bootstrap intervals were drawn with")
    confidence: float = 0.95
    variants: list[VariantStats]
    best: str | None = Field(default=None, description="the highest mean metric")
    pareto: list[str] = Field(default=[], description="no other is cheaper and better")
    notes: list[str] = []


class WalletChange(BaseModel):
    agent: str
    before: Decimal
    after: Decimal


class RolloutResult(BaseModel):
    """How a rollout ended: its phase, where its arms' records are, and the comparison."""

    rollout_id: str
    name: str
    phase: Phase
    total: int
    records_ref: str = Field(description="every arm's record, JSON lines in the artifact store")
    comparison: VariantComparison
    wallets: list[WalletChange] = []


class RolloutMemo(BaseModel):
    """What a rollout's memo says (ROLLOUT_MEMO), so a list or an export needs no worker:
    its name and size, and once it has ended how, and where its records are."""

    name: str
    total: int
    phase: Phase = "running"
    records: list[str] = Field(default=[], description="refs of its records, JSON lines")


class ArmBatch(BaseModel):
    """Finished arms to store, as JSON lines, before the workflow continues as new."""

    records: list[ArmRecord]


class SettleInput(BaseModel):
    """The end of a rollout: its stored records, completed from the ledger and compared."""

    rollout_id: str
    spec: RolloutSpec
    stored: list[str]
    since: datetime = Field(description="when the rollout started: its transfers are later")
    no_ledger: str | None = Field(default=None, description="why the ledger is not read")


class Settled(BaseModel):
    records_ref: str
    comparison: VariantComparison


def case_id(message: str) -> str:
    return hashlib.sha256(message.encode()).hexdigest()[:16]


def records_jsonl(records: list[ArmRecord]) -> bytes:
    return "".join(r.model_dump_json() + "\n" for r in records).encode()


def parse_records(data: bytes) -> list[ArmRecord]:
    return [ArmRecord.model_validate_json(line) for line in data.splitlines() if line.strip()]
