"""Pure decisions about one tool call: may it run, is it a duplicate, may it delegate, does
it run inside the workflow task (the ids a call makes are in contract/ids.py); and what the
calls of a step record as they end.

Kept apart from the workflow so they are unit-tested without Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2engine.contract.agent import AgentSpec, DedupPolicy
from p2engine.contract.hashing import arguments_digest
from p2engine.contract.models import DEFAULT_TOOL_TIMEOUT_S, ContentNode, ToolInfo, ToolOutcome
from p2engine.contract.routing import Routing
from p2engine.contract.usage import Usage


@dataclass
class CallResult:
    """How one call of a model step ended, before it becomes a stack entry."""

    outcome: ToolOutcome
    delegated: bool = False
    penalty: bool = False
    child_id: str | None = None
    child_reply_ref: str | None = None
    child_usage: Usage | None = None
    stored_node: ContentNode | None = None  # its ToolResult node, stored by the call


@dataclass
class StepCalls:
    """What the calls of one step share: argument keys seen and child ids given out, and
    whether a call is alone in its step (it then stores its own result node)."""

    keys: set[str] = field(default_factory=set)
    child_ids: set[str] = field(default_factory=set)
    alone: bool = False


def call_key(name: str, arguments: str) -> str:
    """The dedup key: same tool and same arguments give the same key, whatever the JSON
    spacing or order (the tool cache keys on the same canonical form)."""
    return f"{name}:{arguments_digest(arguments)[:32]}"


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


def call_refusal(name: str, allowed: list[str], agent_id: str) -> str | None:
    """Why the model may not call `name` at all (it is not in the agent's tools), or None."""
    return None if name in allowed else f"tool '{name}' is not allowed for {agent_id}"


def duplicate_verdict(
    name: str,
    arguments: str,
    step: int,
    seen: dict[str, int],
    step_keys: set[str],
    policy: DedupPolicy,
) -> tuple[str | None, bool]:
    """For a side-effecting call: why it is skipped (strict) and whether it carries a penalty.
    Records its key in `seen` (first step, kept across steps) and `step_keys` (this step)."""
    key = call_key(name, arguments)
    first = seen.setdefault(key, step)
    repeated = first != step or key in step_keys
    step_keys.add(key)
    if not repeated:
        return None, False
    if policy == "strict":
        return f"identical {name} call already made at step {first}", False
    return None, policy == "penalty"


# A tool declared slower than the default timeout keeps an activity task of its own.
QUICK_TOOL_S = DEFAULT_TOOL_TIMEOUT_S


def runs_local(info: ToolInfo, routing: Routing | None) -> bool:
    """Whether a built-in tool call runs as a local activity, inside the workflow task that
    asked for it: its result is a marker in the history instead of an activity task's
    schedule, start and completion and the workflow task after them. Only a side-effect-free
    tool, since a local activity runs again if its workflow task is lost before it is
    recorded, and not where tool calls have a queue of their own (a local activity runs on
    the workflow's worker)."""
    return (
        info.side_effect_free and info.timeout_s <= QUICK_TOOL_S and not (routing and routing.tools)
    )
