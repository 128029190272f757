"""An agent's configuration: the program around the model, in one value with an id.

`AgentConfig` holds every knob a run of the agent can turn (its instructions, persona,
tools, model and sampling); the rest of an `AgentSpec` (its id, type, limits, rules) says
who the agent is, not how it is tuned. A config's id is a hash of its knobs, so two runs
with the same id ran the same program, and a rollout's arms, a learning run's candidates
and a conversation's overrides can be compared by it. The persona is a name (a label) and
its template's text, taken from the catalog: editing a persona makes another config.
`ConfigPatch` is a change to some knobs: a rollout variant, an override or a branch's
changes is one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from p2engine.contract.agent import AgentSpec
from p2engine.contract.hashing import content_ref

# The knobs, in the order they print: what a variant, an override or a learner may change.
KNOBS = ("system_prompt", "persona", "tools", "model", "temperature", "top_p", "max_tokens")
CONFIG_ID_DIGITS = 16  # 64 bits of SHA-256: an id, shown whole
NO_PERSONA = "none"  # the persona a patch or an override sets to remove the agent's
NO_TEXTS: Mapping[str, str] = MappingProxyType({})


def persona_knobs(persona: str | None, texts: Mapping[str, str]) -> dict[str, str | None]:
    """The persona knobs for `persona` (a name): its template's text from `texts` (name ->
    text, the catalog's). 'none' is no persona and no text. A name `texts` lacks (a catalog
    made before persona texts) keeps no text, and a worker reads that template from its disk."""
    if persona is None or persona == NO_PERSONA:
        return {"persona": None, "persona_text": None}
    return {"persona": persona, "persona_text": texts.get(persona)}


class AgentConfig(BaseModel):
    """The knobs of one agent as a run uses them; `id` names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    system_prompt: str | None = None
    persona: str | None = Field(default=None, description="a persona template's name: a label")
    persona_text: str | None = Field(
        default=None, description="that template's text, unrendered ($agent_id, ...)"
    )
    tools: tuple[str, ...] = ()
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    @classmethod
    def of(cls, agent: AgentSpec, personas: Mapping[str, str]) -> Self:
        """`agent`'s config, its persona's text taken from `personas` (the catalog's)."""
        knobs = agent.model_dump(include=set(KNOBS))
        return cls.model_validate(
            {"agent_id": agent.id, **knobs, **persona_knobs(agent.persona, personas)}
        )

    def canonical(self) -> str:
        """The config as JSON with sorted keys: what its ref hashes and the store holds. A
        config without persona text leaves the field out, so configs made before persona
        texts keep their ids."""
        unset = {"persona_text"} if self.persona_text is None else None
        return json.dumps(
            self.model_dump(mode="json", exclude=unset), sort_keys=True, ensure_ascii=False
        )

    @property
    def ref(self) -> str:
        """The artifact store's ref of the canonical JSON: `p2e artifact cat` shows it."""
        return content_ref(self.canonical().encode())

    @property
    def id(self) -> str:
        """The ref's first digits: the same agent and knobs, the same id."""
        return self.ref[:CONFIG_ID_DIGITS]

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

    def apply(self, config: AgentConfig, personas: Mapping[str, str] = NO_TEXTS) -> AgentConfig:
        """`config` with these knobs; a persona set here takes its text from `personas`."""
        knobs = self.model_dump(exclude_none=True)
        if self.persona is not None:
            knobs.update(persona_knobs(self.persona, personas))
        return config.model_copy(update=knobs)

    def changes(self, config: AgentConfig) -> dict[str, object]:
        """The knobs this patch would change on `config`, with their new values."""
        before = config.model_dump()
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if before[k] != v}
