"""What a conversation's payloads carry: only what their reader uses, since every byte of an
activity's input is written into the history and read back on every replay.

Kept apart from the workflow so they are unit-tested without Temporal.
"""

from __future__ import annotations

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.models import Catalog, CatalogPartInput


def step_extras(agent: AgentSpec, config: AgentConfig) -> dict[str, object]:
    """The agent's fields a step reads beyond its config: the description for a persona's
    text, the rules and fallback for a rule-based agent; left out where nothing reads them."""
    extras: dict[str, object] = {}
    if config.persona:
        extras["description"] = agent.description
    if agent.type == "rule_based":
        extras["rules"] = agent.rules
        extras["fallback_reply"] = agent.fallback_reply
    return extras


def catalog_part(
    catalog: Catalog, agent_id: str | None = None, persona: str | None = None
) -> CatalogPartInput | None:
    """What a slim catalog (CATALOG_BY_REF) must read from the whole one for `agent_id`'s spec
    and `persona`'s text; None when it has them, or names nothing it could read them from."""
    if catalog.ref is None:
        return None
    agents, personas = [], []
    if agent_id is not None and agent_id in catalog.agent_names() and not catalog.agent(agent_id):
        agents.append(agent_id)
    if persona in catalog.personas and persona not in catalog.persona_texts:
        personas.append(persona)
    if not agents and not personas:
        return None
    return CatalogPartInput(ref=catalog.ref, agents=agents, personas=personas)
