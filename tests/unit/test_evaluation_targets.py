"""What a step's evaluators score (workflows/evaluations.py), without Temporal."""

from __future__ import annotations

from p2engine.contract.agent import AgentSpec
from p2engine.contract.evals import EvalOutcome, EvaluatorInfo, Trigger
from p2engine.contract.models import StackEntry
from p2engine.contract.states import State
from p2engine.workflows.evaluations import (
    evaluator_ids,
    local,
    mean,
    means,
    only_results,
    question_ref,
    score,
    targets,
)


def entry(kind: State, ref: str | None) -> StackEntry:
    return StackEntry(step=1, kind=kind, agent_id="a", ref=ref)


def info(evaluator_id: str, trigger: Trigger) -> EvaluatorInfo:
    return EvaluatorInfo(id=evaluator_id, version="1", trigger=trigger)


EVALUATORS = [info("each_step", "step"), info("each_tool", "tool"), info("answer", "final")]


def test_each_trigger_scores_its_kind_of_entry() -> None:
    step = [entry(State.USER_MESSAGE, "u"), entry(State.ASSISTANT_MESSAGE, "r")]
    assert targets(step, EVALUATORS) == [(1, ["each_step", "answer"])]
    results = [entry(State.TOOL_RESULT, "t1"), entry(State.AGENT_RESULT, "t2")]
    assert targets(results, EVALUATORS) == [(0, ["each_tool"]), (1, ["each_tool"])]


def test_the_calls_of_one_model_step_are_scored_once() -> None:
    calls = [entry(State.TOOL_CALL, "reply"), entry(State.AGENT_CALL, "reply")]
    assert targets(calls, EVALUATORS) == [(0, ["each_step"])]


def test_entries_without_content_or_evaluators_are_not_scored() -> None:
    assert targets([entry(State.FINISHED, None), entry(State.WAITING, None)], EVALUATORS) == []
    assert targets([entry(State.ASSISTANT_MESSAGE, "r")], []) == []


def test_the_agents_evaluators_come_first_and_each_once() -> None:
    agent = AgentSpec.model_validate({"id": "a", "eval": {"evaluators": ["x", "y"]}})
    assert evaluator_ids(agent, ["y", "z"]) == ["x", "y", "z"]
    assert evaluator_ids(AgentSpec(id="b"), ["z"]) == ["z"]


def test_the_score_is_the_mean_of_every_evaluation() -> None:
    assert mean([]) is None
    assert mean([1.0, 0.0, 0.5]) == 0.5


def test_a_tool_step_adds_results_alone() -> None:
    results = [entry(State.TOOL_RESULT, "t1"), entry(State.AGENT_RESULT, "t2")]
    assert only_results(results)
    assert not only_results([*results, entry(State.ASSISTANT_MESSAGE, "r")])


def test_an_entry_answers_the_last_user_message_before_it() -> None:
    stack = [
        entry(State.USER_MESSAGE, "u1"),
        entry(State.ASSISTANT_MESSAGE, "r1"),
        entry(State.USER_MESSAGE, "u2"),
        entry(State.TOOL_CALL, "r2"),
    ]
    assert question_ref(stack[:2]) == "u1"
    assert question_ref(stack) == "u2"
    assert question_ref([]) is None


def test_the_conversations_score_counts_every_scored_evaluation_on_its_stack() -> None:
    def scored(*values: float | None) -> StackEntry:
        outcomes = [
            EvalOutcome(evaluator_id=f"e{n}", version="1", value=v) for n, v in enumerate(values)
        ]
        return entry(State.ASSISTANT_MESSAGE, "r").model_copy(update={"evaluations": outcomes})

    assert score([entry(State.USER_MESSAGE, "u")]) is None
    assert score([scored(1.0, None), entry(State.TOOL_RESULT, "t"), scored(0.5)]) == 0.75


def test_an_evaluation_runs_inside_the_workflow_task_only_when_every_evaluator_is_quick() -> None:
    rule = EvaluatorInfo(id="rule", version="1", trigger="step", quick=True)
    judge = EvaluatorInfo(id="judge", version="1", trigger="step")
    assert local([rule, rule])
    assert not local([rule, judge])
    assert not local([judge])


def test_each_evaluators_mean_counts_its_scores_and_not_its_errors() -> None:
    def scored(*outcomes: tuple[str, float | None]) -> StackEntry:
        evaluations = [EvalOutcome(evaluator_id=i, version="1", value=v) for i, v in outcomes]
        return entry(State.ASSISTANT_MESSAGE, "r").model_copy(update={"evaluations": evaluations})

    stack = [scored(("a", 1.0), ("b", None)), scored(("a", 0.5)), scored(("b", None), ("c", 0.0))]
    assert means(stack) == {"a": 0.75, "c": 0.0}
    assert means([]) == {}
