"""Pure decisions about one tool call: duplicate keys and delegation checks (the ids a
call makes are in ids.py).

Kept apart from the workflow so they are unit-tested without Temporal.
"""

from __future__ import annotations

import hashlib
import json

from contract.agent import AgentSpec


def call_key(name: str, arguments: str) -> str:
    """Same tool and same arguments give the same key, whatever the JSON spacing or order."""
    try:
        canonical = json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except json.JSONDecodeError:
        canonical = arguments
    return f"{name}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def delegation_refusal(agent: AgentSpec, lineage: list[str], target: str) -> str | None:
    """Why `agent` (below `lineage`) may not delegate to `target`, or None if it may."""
    chain = [*lineage, agent.id]
    if target in chain:
        return f"delegation cycle refused: {' -> '.join([*chain, target])}"
    depth = len(chain)
    if depth > agent.limits.max_delegation_depth:
        return (
            f"delegation refused: depth {depth} is over max_delegation_depth "
            f"{agent.limits.max_delegation_depth} of {agent.id}"
        )
    return None
