"""Whether a conversation may take another step: pure, tested without Temporal."""

from __future__ import annotations

from p2engine.contract.agent import AgentLimits
from p2engine.contract.states import FinishReason
from p2engine.contract.usage import Usage


def limit_reached(limits: AgentLimits, step: int, usage: Usage) -> tuple[FinishReason, str] | None:
    """The limit that ends the conversation before its next step, and why; None to go on."""
    if step >= limits.max_steps:
        return FinishReason.MAX_STEPS, f"step limit {limits.max_steps} reached"
    if limits.max_cost is not None and usage.cost_usd >= limits.max_cost:
        return (
            FinishReason.BUDGET,
            f"cost ${usage.cost_usd:.4f} reached the budget ${limits.max_cost:.4f}",
        )
    return None
