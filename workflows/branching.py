"""What a branch starts from: a conversation's state at the end of one of its steps, rebuilt
from the step's checkpoint and the stack. Pure, tested without Temporal; the workflow
records the checkpoints, the client and the `branch` update use these to start a branch.

The stack only grows and a step's entries never change but for the scores that come in
later, so the stack's prefix, the step's checkpoint and what the prefix itself says (the
duplicate calls it made, the rewards it was paid) are that state exactly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from p2engine.contract.models import (
    BranchOrigin,
    Checkpoint,
    ConversationState,
    StackEntry,
    preview,
)
from p2engine.contract.names import BRANCH_MEMO
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.workflows import search

# States after which a new user message can come: an answer, a wait for the user, an end.
TAKES_A_MESSAGE = frozenset({State.ASSISTANT_MESSAGE, State.WAITING, State.FINISHED})


def checkpoint(s: ConversationState) -> Checkpoint:
    """The checkpoint of the step `s` has just ended."""
    return Checkpoint(
        step=s.step,
        length=len(s.stack),
        state=s.state,
        waiting_for=s.waiting_for,
        head=s.head,
        usage=s.usage,
        calls=s.calls,
        overrides=s.overrides,
        penalties=s.penalties,
    )


def step_checkpoint(s: ConversationState, step: int) -> Checkpoint | None:
    """The checkpoint at the end of `step`: the last one recorded for it."""
    return next((c for c in reversed(s.checkpoints) if c.step == step), None)


def branch_problem(s: ConversationState, step: int, message: str | None) -> str | None:
    """Why a branch cannot start at the end of `step` (with `message`), or None."""
    steps = sorted({c.step for c in s.checkpoints})
    if step < 1:
        return f"step must be 1 or more (got {step})"
    found = step_checkpoint(s, step)
    if found is None:
        reached = f"steps {steps[0]} to {steps[-1]}" if steps else "no step yet"
        return f"step {step} was never reached ({reached})"
    if message is not None and found.state not in TAKES_A_MESSAGE:
        pending = "calls still to run" if found.calls else "results the model has yet to read"
        return (
            f"step {step} ends with {pending} ({found.state}), so no message can follow it; "
            "branch at a step that ends with an answer, or without a message"
        )
    if found.state is State.WAITING and found.waiting_for == "human" and message is not None:
        return f"step {step} waits for a human agent's answer, not a user message"
    return None


def state_at(
    s: ConversationState, step: int, origin: BranchOrigin, message: str | None = None
) -> ConversationState:
    """The state `s` had at the end of `step`, ready to run as a branch: with `message`, it
    waits for nothing and takes the message as its user's next one. `branch_problem` must
    have found nothing."""
    found = step_checkpoint(s, step)
    assert found is not None, "branch_problem() first"
    stack = s.stack[: found.length]
    refs = {e.ref for e in stack}
    branch = ConversationState(
        state=found.state,
        waiting_for=found.waiting_for,
        step=found.step,
        usage=found.usage,
        head=found.head,
        pending=[n for n in s.pending if n.ref() in refs],  # the source may not have stored
        calls=found.calls,
        reason=_reason(stack, found),
        stack=stack,
        seen_calls={key: first for key, first in s.seen_calls.items() if first <= step},
        penalties=found.penalties,
        overrides=found.overrides,
        rewarded=_rewarded(stack),
        eval_usage=_eval_usage(stack),
        checkpoints=[c for c in s.checkpoints if c.step <= step],
        branch_of=origin,
        configs_sent=s.configs_sent,  # stored, whenever they were: in the store it shares
    )
    if message is not None:
        branch.state, branch.waiting_for, branch.reason = State.WAITING, "user", None
        branch.inbox = [message]
    return branch


def _reason(stack: list[StackEntry], found: Checkpoint) -> FinishReason | None:
    last = stack[-1] if stack else None
    return last.reason if found.state is State.FINISHED and last is not None else None


def _rewarded(stack: list[StackEntry]) -> Decimal:
    """What the prefix's rewards paid: the branch's budget goes on from there."""
    return sum(
        (
            o.reward.amount
            for e in stack
            for o in e.evaluations
            if o.reward is not None and o.reward.status == "paid"
        ),
        Decimal(0),
    )


def _eval_usage(stack: list[StackEntry]) -> Usage:
    return sum((o.usage for e in stack for o in e.evaluations if o.usage), Usage())


def branch_search_attributes(agent_id: str, origin: BranchOrigin) -> TypedSearchAttributes:
    """A branch shows whose it is and what it branched from (`P2eBranchOf = '<source>'`)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(search.AGENT, agent_id),
            SearchAttributePair(search.BRANCH_OF, origin.source),
        ]
    )


def branch_memo(origin: BranchOrigin) -> dict[str, Any]:
    return {BRANCH_MEMO: origin.model_dump()}


def branch_summary(origin: BranchOrigin, message: str | None) -> str:
    then = f": {message}" if message is not None else ""
    return preview(f"branch of {origin.source} at step {origin.step}{then}", 200)
