"""The Web UI's view of a workflow, as markdown: a conversation's static details, sent
with its start, and each workflow's current details, served by a query. Pure text from
input and state, tested without Temporal; neither is a command, so its wording can change
without breaking replay."""

from __future__ import annotations

from p2engine.contract.agent import DEFAULT_MODEL
from p2engine.contract.evals import PairInput, PairOutcome
from p2engine.contract.models import ActiveBranch, ConversationInput, ConversationState, preview
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.workflows.evaluations import evaluator_ids, score

# The children a conversation's details name: the latest ones, the rest are counted.
CHILDREN_SHOWN = 3


def conversation_details(inp: ConversationInput) -> str:
    """A conversation's static details, set once at its start: who runs it on what, with
    which tools and evaluators, for whom, and the message it opens with in full."""
    agent = inp.agent
    runs_on = {"rule_based": "rules", "human": "a person"}.get(
        agent.type, inp.model or agent.model or DEFAULT_MODEL
    )
    lines = [f"**{agent.id}** on {runs_on}", f"tools: {', '.join(agent.tools) or '-'}"]
    if evaluators := evaluator_ids(agent, inp.evaluators):
        lines.append(f"evaluators: {', '.join(evaluators)}")
    if inp.lineage:
        lines.append(f"delegated by: {' → '.join(inp.lineage)}")
    if inp.message is not None:
        lines.append(f"message: {preview(inp.message, 1000)}")
    return "\n\n".join(lines)


def current_details(agent_id: str, s: ConversationState) -> str:
    """Agent, state, step, score, tokens and cost, then the last entry that says something
    (a plain `Finished` says nothing the state line does not), like a transcript line, and
    the children it delegated to."""
    last = next((e for e in reversed(s.stack) if e.preview), s.stack[-1] if s.stack else None)
    reason = f" ({s.reason})" if s.reason else ""
    mean = score(s.stack)
    scored = f" · score {mean:.2f}" if mean is not None else ""
    run = f" · run {s.runs}" if s.runs > 1 else ""
    penalties = f" · {s.penalties} penalties" if s.penalties else ""
    delegated = f"\n\nchildren: {children}" if (children := _children(s)) else ""
    judges = f"\n\njudges: {_spent(s.eval_usage)}" if s.eval_usage.total_tokens else ""
    overrides = (
        f"\n\noverrides: {s.overrides.model_dump_json(exclude_none=True)}"
        if s.overrides.active()
        else ""
    )
    return (
        f"**{agent_id}** · state **{s.state}**{reason} · step {s.step}{scored} · "
        f"{_spent(s.usage)}{run}{penalties}\n\n"
        f"last: {last.kind if last else '-'} {last.preview if last else ''}"
        f"{delegated}{judges}{overrides}"
    )


def compare_details(inp: PairInput, swapped: bool, outcome: PairOutcome | None) -> str:
    """Which answers are compared, which one the judge reads first, and once it has
    answered, its verdict."""
    first = inp.b if swapped else inp.a
    head = (
        f"**{inp.evaluator_id}** · A {inp.a.conversation_id} vs B {inp.b.conversation_id} · "
        f"shown first: {first.conversation_id}"
    )
    if outcome is None:
        return f"{head}\n\njudging"
    if outcome.error is not None:
        return f"{head}\n\nerror: {outcome.error}"
    value = f" · preference for A {outcome.value:.2f}" if outcome.value is not None else ""
    return f"{head}\n\nwinner: **{outcome.winner or '-'}**{value}"


def active_branch_details(record: ActiveBranch, checkouts: int) -> str:
    """Where `p2e chat -c` goes on, and how close this run is to continuing as new."""
    return f"**{record.root}** continues in **{record.active}** · {checkouts} checkouts this run"


def _children(s: ConversationState) -> str:
    ids = [e.child_id for e in s.stack if e.kind is State.AGENT_RESULT and e.child_id]
    earlier = len(ids) - CHILDREN_SHOWN
    return ", ".join(ids[-CHILDREN_SHOWN:]) + (f" (+{earlier} earlier)" if earlier > 0 else "")


def _spent(usage: Usage) -> str:
    return f"{usage.total_tokens} tokens · ${usage.cost_usd:.4f}"
