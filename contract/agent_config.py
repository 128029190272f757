"""An agent's configuration: the program around the model, in one value with an id.

`AgentConfig` holds every knob a run of the agent can turn (its instructions, persona,
tools, model and sampling); the rest of an `AgentSpec` (its id, type, limits, rules) says
who the agent is, not how it is tuned. A config's id is a hash of its knobs, so two runs
with the same id ran the same program, and a rollout's arms, a learning run's candidates
and a conversation's overrides can be compared by it. `ConfigPatch` is a change to some
knobs: a rollout variant, an override or a branch's changes is one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from p2engine.contract.agent import AgentSpec

# The knobs, in the order they print: what a variant, an override or a learner may change.
KNOBS = ("system_prompt", "persona", "tools", "model", "temperature", "top_p", "max_tokens")
CONFIG_ID_DIGITS = 16  # 64 bits of SHA-256: an id, shown whole


class AgentConfig(BaseModel):
    """The knobs of one agent as a run uses them; `id` names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    system_prompt: str | None = None
    persona: str | None = Field(default=None, description="a persona template's name")
    tools: tuple[str, ...] = ()
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    @classmethod
    def of(cls, agent: AgentSpec) -> Self:
        return cls.model_validate({"agent_id": agent.id, **agent.model_dump(include=set(KNOBS))})

    @property
    def id(self) -> str:
        """The hash of the agent and its knobs (canonical JSON): the same knobs, the same id."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:CONFIG_ID_DIGITS]

    def on(self, agent: AgentSpec) -> AgentSpec:
        """`agent` running with these knobs."""
        knobs = self.model_dump(include=set(KNOBS))
        knobs["tools"] = list(self.tools)
        return agent.model_copy(update=knobs)


class ConfigPatch(BaseModel):
    """A change to some knobs; a knob left None is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system_prompt: str | None = None
    persona: str | None = None
    tools: tuple[str, ...] | None = None
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    def apply(self, config: AgentConfig) -> AgentConfig:
        return config.model_copy(update=self.model_dump(exclude_none=True))

    def changes(self, config: AgentConfig) -> dict[str, object]:
        """The knobs this patch would change on `config`, with their new values."""
        before = config.model_dump()
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if before[k] != v}
