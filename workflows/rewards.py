"""What an evaluation earns under the conversation's reward policy. Pure, tested without
Temporal; the workflow pays through the ledger's reward activity."""

from __future__ import annotations

from decimal import Decimal

from p2engine.contract.evals import EvalOutcome, RewardPolicy


def reward_due(policy: RewardPolicy, outcome: EvalOutcome, paid: Decimal) -> Decimal | str | None:
    """The amount to pay for `outcome` when `paid` is already spent; a reason when it earns
    something the budget no longer covers; None when it earns nothing."""
    if outcome.value is None or (
        policy.evaluators and outcome.evaluator_id not in policy.evaluators
    ):
        return None
    amount = policy.amount(outcome.value)
    if amount <= 0:
        return None
    if paid + amount > policy.budget:
        return f"budget spent: {paid} of {policy.budget} paid, {amount} more would exceed it"
    return amount
