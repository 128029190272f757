"""Which entries of a step the conversation's evaluators score, and what the scores add up
to. Pure, tested without Temporal; the workflow starts the evaluation activities."""

from __future__ import annotations

from collections.abc import Sequence

from p2engine.contract.agent import AgentSpec
from p2engine.contract.evals import EvaluatorInfo, Trigger
from p2engine.contract.models import StackEntry
from p2engine.contract.states import State

# The entries each trigger scores. A model step's calls share the step's reply node.
SCORED: dict[Trigger, frozenset[State]] = {
    "step": frozenset({State.ASSISTANT_MESSAGE, State.TOOL_CALL, State.AGENT_CALL}),
    "tool": frozenset({State.TOOL_RESULT, State.AGENT_RESULT}),
    "final": frozenset({State.ASSISTANT_MESSAGE}),
}


def evaluator_ids(agent: AgentSpec, run: Sequence[str]) -> list[str]:
    """The agent's own evaluators (agents.yml `eval:`), then the run's, each once."""
    own = agent.eval.evaluators if agent.eval else []
    return list(dict.fromkeys([*own, *run]))


def targets(
    entries: Sequence[StackEntry], evaluators: Sequence[EvaluatorInfo]
) -> list[tuple[int, list[str]]]:
    """For the entries one step added: (index, the ids of the evaluators that score it), one
    pair per stored node, so the calls of one model step are scored once, at the first."""
    found: list[tuple[int, list[str]]] = []
    refs: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.ref is None or entry.ref in refs:
            continue
        ids = [e.id for e in evaluators if entry.kind in SCORED[e.trigger]]
        if ids:
            refs.add(entry.ref)
            found.append((index, ids))
    return found


def local(evaluators: Sequence[EvaluatorInfo]) -> bool:
    """Whether an evaluation can run as a local activity, inside the workflow task that
    starts it: only when every evaluator is quick, since the task waits for it."""
    return all(e.quick for e in evaluators)


def only_results(entries: Sequence[StackEntry]) -> bool:
    """Whether a step added tool or agent results alone (a tool step)."""
    return all(e.kind in SCORED["tool"] for e in entries)


def question_ref(stack: Sequence[StackEntry]) -> str | None:
    """The ref of the last user message up to an entry: what that entry answers."""
    return next((e.ref for e in reversed(stack) if e.kind is State.USER_MESSAGE), None)


def mean(scores: Sequence[float]) -> float | None:
    """The mean of some scores, None for none."""
    return sum(scores) / len(scores) if scores else None


def means(stack: Sequence[StackEntry]) -> dict[str, float]:
    """Each evaluator's mean over the scores it gave on the stack; one that never scored
    (only errors) has none."""
    scores: dict[str, list[float]] = {}
    for entry in stack:
        for outcome in entry.evaluations:
            if outcome.value is not None:
                scores.setdefault(outcome.evaluator_id, []).append(outcome.value)
    return {evaluator_id: sum(v) / len(v) for evaluator_id, v in scores.items()}


def score(stack: Sequence[StackEntry]) -> float | None:
    """The conversation's score: the mean of every evaluation on its stack that scored (an
    error is no score, not a zero), None before the first."""
    return mean([o.value for e in stack for o in e.evaluations if o.value is not None])
