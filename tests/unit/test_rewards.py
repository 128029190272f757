"""Reward policies (contract/evals.py) and what an evaluation earns (workflows/rewards.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from p2engine.contract.evals import EvalOutcome, RewardPolicy, Threshold
from p2engine.workflows.rewards import reward_due

STEPS = RewardPolicy(
    budget=Decimal("10"),
    thresholds=[Threshold(min=0.5, amount=Decimal("2")), Threshold(min=0.8, amount=Decimal("5"))],
)


def scored(value: float | None, evaluator_id: str = "judge") -> EvalOutcome:
    return EvalOutcome(evaluator_id=evaluator_id, version="1", value=value)


def test_thresholds_pay_the_highest_one_a_score_reaches() -> None:
    assert [STEPS.amount(v) for v in (0.49, 0.5, 0.79, 0.8, 1.0)] == [
        Decimal(0), Decimal(2), Decimal(2), Decimal(5), Decimal(5)
    ]  # fmt: skip


def test_a_linear_policy_pays_per_point_rounded_down_to_cents() -> None:
    linear = RewardPolicy(budget=Decimal("10"), per_point=Decimal("3"))
    assert linear.amount(0.8125) == Decimal("2.43")
    assert linear.amount(0.0) == Decimal("0.00")


@pytest.mark.parametrize(
    "data",
    [
        {"budget": "10"},  # neither rule
        {"budget": "10", "per_point": "1", "thresholds": [{"min": 0.5, "amount": "1"}]},  # both
        {"budget": "-1", "per_point": "1"},
        {"budget": "10", "per_point": "-2"},
        {"budget": "10", "thresholds": [{"min": 0.5, "amount": "-1"}]},
        {"budget": "10", "thresholds": [{"min": 1.5, "amount": "1"}]},
        {"budget": "10", "per_point": "0.001"},
        {"budget": "10", "per_point": "1", "payee": "x"},
    ],
)
def test_a_bad_policy_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RewardPolicy.model_validate(data)


def test_an_evaluation_earns_what_the_policy_says_within_the_budget() -> None:
    assert reward_due(STEPS, scored(0.9), Decimal(0)) == Decimal(5)
    assert reward_due(STEPS, scored(0.9), Decimal(5)) == Decimal(5)
    assert reward_due(STEPS, scored(0.9), Decimal(6)) == (
        "budget spent: 6 of 10 paid, 5 more would exceed it"
    )


def test_no_score_a_low_score_or_another_evaluator_earns_nothing() -> None:
    assert reward_due(STEPS, scored(None), Decimal(0)) is None
    assert reward_due(STEPS, scored(0.1), Decimal(0)) is None
    only_judge = STEPS.model_copy(update={"evaluators": ["judge"]})
    assert reward_due(only_judge, scored(0.9, "rules"), Decimal(0)) is None
    assert reward_due(only_judge, scored(0.9, "judge"), Decimal(0)) == Decimal(5)
