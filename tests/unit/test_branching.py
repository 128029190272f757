"""What a branch starts from (workflows/branching.py), without Temporal."""

from __future__ import annotations

from decimal import Decimal

from p2engine.contract.evals import EvalOutcome, RewardOutcome
from p2engine.contract.models import (
    BranchOrigin,
    ContentNode,
    ConversationState,
    Overrides,
    StackEntry,
    ToolCallRequest,
)
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.workflows.branching import branch_memo, branch_problem, checkpoint, state_at

ORIGIN = BranchOrigin(source="conv-src", step=2)


def conversation() -> ConversationState:
    """A weather conversation recorded step by step as the workflow records it: a call at
    step 1 (a repeated one, penalised), its result at step 2, the answer at step 3."""
    s = ConversationState()
    user = ContentNode(
        kind=State.USER_MESSAGE, parent=None, conversation_id="c", step=0, agent_id="a", text="hi"
    )
    s.stack.append(StackEntry(step=0, kind=State.USER_MESSAGE, agent_id="a", ref=user.ref()))

    def step(kind: State, **changes: object) -> None:
        s.step += 1
        for key, value in changes.items():
            setattr(s, key, value)
        s.state = kind
        s.stack.append(StackEntry(step=s.step, kind=kind, agent_id="a", ref=f"r{s.step}"))
        s.checkpoints.append(checkpoint(s))

    call = ToolCallRequest(id="c1", name="get_weather", arguments='{"city": "Paris"}')
    step(State.TOOL_CALL, calls=[call], usage=Usage(prompt_tokens=10), head="r1")
    s.seen_calls = {"k1": 1}
    s.penalties = 1
    step(State.TOOL_RESULT, calls=[], overrides=Overrides(model="m2"))
    paid = RewardOutcome(status="paid", amount=Decimal("3"), transfer_id="t")
    s.stack[-1].evaluations = [
        EvalOutcome(
            evaluator_id="e", version="1", value=1.0, reward=paid, usage=Usage(prompt_tokens=7)
        )
    ]
    step(State.ASSISTANT_MESSAGE, usage=Usage(prompt_tokens=30), head="r3")
    s.seen_calls["k3"] = 3
    s.configs_sent = ["c" * 64]
    s.pending = [user]
    s.state, s.reason = State.FINISHED, FinishReason.DONE
    s.stack.append(StackEntry(step=3, kind=State.FINISHED, agent_id="a", reason=FinishReason.DONE))
    return s


def test_the_state_at_a_step_is_its_checkpoint_with_the_stack_and_memory_up_to_it() -> None:
    branch = state_at(conversation(), 2, ORIGIN)
    assert (branch.state, branch.step, branch.head, branch.calls) == (
        State.TOOL_RESULT,
        2,
        "r1",
        [],
    )
    assert [e.step for e in branch.stack] == [0, 1, 2]
    assert branch.usage == Usage(prompt_tokens=10)
    assert branch.seen_calls == {"k1": 1}  # the call made at step 3 is not remembered
    assert (branch.penalties, branch.overrides) == (1, Overrides(model="m2"))
    assert (branch.rewarded, branch.eval_usage) == (Decimal("3"), Usage(prompt_tokens=7))
    assert [c.step for c in branch.checkpoints] == [1, 2]
    assert branch.pending == conversation().pending  # the user node, in the prefix
    assert (branch.branch_of, branch.reason, branch.inbox) == (ORIGIN, None, [])
    # Configs stored after the branch point are in the store the branch shares: by ref too.
    assert branch.configs_sent == ["c" * 64]


def test_a_step_with_calls_to_run_keeps_them() -> None:
    branch = state_at(conversation(), 1, BranchOrigin(source="conv-src", step=1))
    assert branch.state is State.TOOL_CALL and [c.id for c in branch.calls] == ["c1"]
    assert branch.pending == conversation().pending


def test_a_message_after_an_answer_is_the_branchs_next_user_message() -> None:
    branch = state_at(conversation(), 3, BranchOrigin(source="conv-src", step=3), "and Oslo?")
    assert (branch.state, branch.waiting_for, branch.inbox) == (
        State.WAITING,
        "user",
        ["and Oslo?"],
    )
    assert branch.reason is None and len(branch.stack) == 4  # without the source's end


def test_what_a_branch_cannot_start_from_is_named() -> None:
    s = conversation()
    assert branch_problem(s, 0, None) == "step must be 1 or more (got 0)"
    assert branch_problem(s, 4, None) == "step 4 was never reached (steps 1 to 3)"
    assert branch_problem(ConversationState(), 1, None) == "step 1 was never reached (no step yet)"
    assert "calls still to run (ToolCall)" in (branch_problem(s, 1, "hi") or "")
    assert "results the model has yet to read" in (branch_problem(s, 2, "hi") or "")
    assert branch_problem(s, 2, None) is None and branch_problem(s, 3, "hi") is None


def test_a_branch_keeps_its_origin_in_the_memo() -> None:
    assert branch_memo(ORIGIN) == {"branch": {"source": "conv-src", "step": 2}}
