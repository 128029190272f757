"""What the rollout workflow starts for an arm and what it keeps of it: the child's id,
input, search attributes and summary, the arm's record from the child's result, the
running tallies per variant, the budget and the wallets' changes. Pure, tested without
Temporal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from p2engine.contract.models import ConversationInput, ConversationResult, preview
from p2engine.contract.rollouts import (
    Arm,
    ArmRecord,
    ArmStatus,
    RolloutInput,
    RolloutSpec,
    VariantTally,
    WalletChange,
    case_id,
)
from p2engine.contract.states import FinishReason, State
from p2engine.workflows import search
from p2engine.workflows.evaluations import evaluator_ids, means, score
from p2engine.workflows.expansion import ArmPlan, PlannedVariant
from p2engine.workflows.revisions import GRID_VARIANTS_NAMED

CALLS = frozenset({State.TOOL_CALL, State.AGENT_CALL})


def arm_plan(inp: RolloutInput) -> ArmPlan:
    """The rollout's arms as its revision names them."""
    catalog = inp.catalog
    agents = {a.id: a for a in catalog.agents}
    named = inp.revision >= GRID_VARIANTS_NAMED
    return ArmPlan(
        inp.spec,
        agents,
        inp.inputs,
        grid_named=named,
        model=inp.model,
        personas=catalog.persona_texts,
    )


def arm_id(rollout_id: str, arm: Arm) -> str:
    """`<rollout>/<team>/<variant>/r<n>`: no conversation a user starts can hold a `/`."""
    return f"{rollout_id}/{arm.key}"


def arm_input(inp: RolloutInput, arm: Arm) -> ConversationInput:
    """The arm's conversation: its variant's agent (with the rollout's model, if it names
    one, and never allowed to spend more than the whole budget) on its case's message,
    scored by its team's evaluator."""
    agent = arm.agent
    if inp.model is not None:
        agent = agent.model_copy(update={"model": inp.model})
    budget = inp.spec.budget
    if budget is not None:
        cap = float(budget)
        if agent.limits.max_cost is None or agent.limits.max_cost > cap:
            limits = agent.limits.model_copy(update={"max_cost": cap})
            agent = agent.model_copy(update={"limits": limits})
    team = inp.spec.teams[arm.team]
    evaluator = team.eval.evaluator_id if team.eval else None
    run_evaluators = [evaluator] if evaluator else []
    return ConversationInput(
        agent=agent,
        message=arm.message,
        catalog=inp.catalog.for_agent(agent, evaluator_ids(agent, run_evaluators)),
        continue_as_new_events=inp.continue_as_new_events,
        revision=inp.revision,
        evaluators=run_evaluators,
        rewards=inp.rewards,
        store_id=inp.store_id,
        routing=inp.routing,
        propagation=inp.propagation,
    )


def arm_search_attributes(rollout_id: str, arm: Arm) -> TypedSearchAttributes:
    """P2eRollout and P2eVariant (`team/variant`), so the Web UI lists a rollout's arms."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(search.AGENT, arm.agent.id),
            SearchAttributePair(search.ROLLOUT, rollout_id),
            SearchAttributePair(search.VARIANT, f"{arm.team}/{arm.variant}"),
        ]
    )


def arm_summary(arm: Arm) -> str:
    return preview(f"{arm.key} · {arm.agent.id}: {arm.message}", 200)


def arm_timeout(spec: RolloutSpec, arm: Arm) -> timedelta | None:
    """How long the arm may run before it counts as failed: its team's eval.timeout_sec."""
    team = spec.teams[arm.team]
    return timedelta(seconds=team.eval.timeout_sec) if team.eval else None


def finished_record(
    rollout_id: str, spec: RolloutSpec, arm: Arm, result: ConversationResult, latency_s: float
) -> ArmRecord:
    """The record of an arm whose conversation ended, whatever its reason: one that ended
    short of done (limits, errors) counts as failed."""
    team = spec.teams[arm.team]
    evaluator = team.eval.evaluator_id if team.eval else None
    value = means(result.stack).get(evaluator) if evaluator else score(result.stack)
    done = result.reason is FinishReason.DONE
    reward = sum(
        (
            o.reward.amount
            for e in result.stack
            for o in e.evaluations
            if o.reward is not None and o.reward.status == "paid"
        ),
        Decimal(0),
    )
    pass_score = team.eval.pass_score if team.eval else 0.5
    return ArmRecord(
        **_identity(rollout_id, arm),
        status="done" if done else "failed",
        reason=result.reason.value,
        error=None if done else _last_words(result),
        score=value,
        # With an evaluator, passing takes its score; without one, finishing done.
        passed=done and (value >= pass_score if value is not None else evaluator is None),
        reward=reward,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cost_usd=result.usage.cost_usd + result.eval_usage.cost_usd,
        judge_cost_usd=result.eval_usage.cost_usd,
        latency_s=latency_s,
        steps=result.steps,
        tool_calls=sum(1 for e in result.stack if e.kind in CALLS),
        reply_ref=result.reply_ref,
        eval_refs=[
            o.ref
            for e in result.stack
            for o in e.evaluations
            if o.ref is not None and o.evaluator_id == evaluator
        ],
    )


def unfinished_record(rollout_id: str, arm: Arm, status: ArmStatus, error: str) -> ArmRecord:
    """An arm that failed to run, was cancelled or was never started (budget)."""
    return ArmRecord(**_identity(rollout_id, arm), status=status, error=error)


def _identity(rollout_id: str, arm: Arm) -> dict[str, object]:
    return {
        "key": arm.key,
        "team": arm.team,
        "variant": arm.variant,
        "order": arm.order,
        "case": arm.case,
        "repeat": arm.repeat,
        "case_id": case_id(arm.message),
        "agent_id": arm.agent.id,
        "workflow_id": arm_id(rollout_id, arm),
        "config": arm.config,
    }


def _last_words(result: ConversationResult) -> str:
    finished = next((e for e in reversed(result.stack) if e.kind is State.FINISHED), None)
    return finished.preview if finished and finished.preview else f"ended: {result.reason}"


def empty_tallies(variants: Sequence[PlannedVariant], arms_each: int) -> list[VariantTally]:
    return [VariantTally(team=v.team, variant=v.variant, total=arms_each) for v in variants]


def tally(tallies: Sequence[VariantTally], record: ArmRecord) -> None:
    """Add a finished arm to its variant's running totals."""
    t = next(t for t in tallies if (t.team, t.variant) == (record.team, record.variant))
    match record.status:
        case "done":
            t.done += 1
        case "failed":
            t.failed += 1
        case "skipped":
            t.skipped += 1
        case "cancelled":
            t.cancelled += 1
    if record.score is not None:
        t.scored += 1
        t.score_sum += record.score
        t.score_squares += record.score**2
    t.passed += record.passed
    t.tokens += record.tokens
    t.cost_usd += record.cost_usd
    t.latency_s += record.latency_s
    t.reward += record.reward


def budget_spent(spec: RolloutSpec, spent_usd: float) -> bool:
    """Whether the finished arms have spent the rollout's budget: no more arms start."""
    return spec.budget is not None and spent_usd >= float(spec.budget)


def wallet_changes(
    before: Mapping[str, Decimal], after: Mapping[str, Decimal]
) -> list[WalletChange]:
    """The wallets whose balance the rollout changed (opened ones start from 0)."""
    return [
        WalletChange(agent=agent, before=before.get(agent, Decimal(0)), after=balance)
        for agent, balance in sorted(after.items())
        if before.get(agent, Decimal(0)) != balance
    ]


def rollout_details(phase: str, total: int, tallies: Sequence[VariantTally], running: int) -> str:
    """The rollout's current details in the Web UI: how far it is and what it has spent,
    and each variant."""
    finished = sum(t.finished for t in tallies)
    failed = sum(t.failed for t in tallies)
    tokens = sum(t.tokens for t in tallies)
    cost = sum(t.cost_usd for t in tallies)
    lines = [
        f"**{phase}** · {finished}/{total} arms · {running} running · {failed} failed · "
        f"{tokens} tokens · ${cost:.4f}"
    ]
    for t in tallies:
        mean = f" · score {t.score_sum / t.scored:.2f}" if t.scored else ""
        lines.append(f"- {t.key}: {t.finished}/{t.total}{mean}")
    return "\n".join(lines)
