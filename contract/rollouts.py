"""A rollout file, validated: teams of variants of an agent, each run `repeats` times on the
same inputs, so that the variants can be compared case by case.

The shape is the original P2Engine's (`teams: {team: {initial_message, base, variants,
eval}}`), so its files run unchanged; `repeats`, `concurrency`, `seed`, `budget`,
`baseline` and `inputs` are ours. Keys the original knew that mean nothing here are kept
aside as warnings (ORIGINAL_ONLY); any other unknown key is an error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.agent import AgentSpec

DEFAULT_MAX_ARMS = 10_000

# What a variant may set, over its team's `base`: the agent's knobs, and its first message.
# `behavior_template` is the original's name for a persona.
AGENT_KEYS = ("agent_id", "model", "temperature", "top_p", "max_tokens", "tools", "persona")
VARIANT_KEYS = frozenset({*AGENT_KEYS, "behavior_template", "initial_message", "id"})

# Keys of the original's files that have no meaning here: accepted, each with a warning.
ORIGINAL_ONLY = {
    "prompts": "the original only used it to decide whether to judge; an evaluator is named",
    "judge_version": "an evaluator's version is its own (config/evals.yml)",
    "strict_tools": "tools are always checked against the registry",
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
    initial_message: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_persona(self) -> Variant:
        if self.persona is not None and self.behavior_template is not None:
            raise ValueError("give persona or behavior_template, not both")
        return self

    def over(self, base: Variant) -> Variant:
        """This variant's settings over `base`'s."""
        mine = self.model_dump(exclude_none=True)
        return Variant.model_validate({**base.model_dump(exclude_none=True), **mine})


class TeamEval(_Strict):
    evaluator_id: str | None = None
    metric: str = "score"
    rubric: str | None = None
    timeout_sec: float = Field(default=900, gt=0)


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


class Arm(BaseModel):
    """One conversation of the rollout: a variant on one input, one repeat."""

    key: str = Field(description="<team>/<variant>/r<n>: its part of the conversation's id")
    team: str
    variant: str
    case: int = Field(description="the input's index: arms of one case are compared in pairs")
    repeat: int
    agent: AgentSpec
    message: str
