"""Propagation every N model steps, without Temporal: when a conversation waits at a barrier
and what a release may be (workflows/propagation.py), and what the learning run decides
at each barrier from what the arms recorded (activities/propagation.py)."""

from __future__ import annotations

from p2engine.activities.propagation import ArmView, next_round, pushes, releases
from p2engine.contract.agent_config import AgentConfig, ConfigPatch
from p2engine.contract.evals import EvalOutcome
from p2engine.contract.learning import EveryN, SiblingArm
from p2engine.contract.models import (
    Catalog,
    ConversationState,
    Overrides,
    Propagation,
    Release,
    StackEntry,
    SyncPoint,
    SyncStatus,
    ToolInfo,
)
from p2engine.contract.states import State
from p2engine.runtime.catalog import load_catalog
from p2engine.runtime.settings import Settings
from p2engine.workflows import propagation
from p2engine.workflows.learning_plan import siblings
from p2engine.workflows.validators import release_problem

EVERY_2 = Propagation(every=2, metric="judge")
PLAIN = AgentConfig(agent_id="a", system_prompt="Be brief.")
BETTER = AgentConfig(agent_id="a", system_prompt="Answer as a bullet list.", temperature=0.0)
OTHER = AgentConfig(agent_id="a", system_prompt="Cite the tool you used.")


def state(model_steps: int, *points: SyncPoint) -> ConversationState:
    return ConversationState(model_steps=model_steps, sync_points=list(points))


def at(number: int, score: float | None, released: bool = False, **overrides: object) -> SyncPoint:
    return SyncPoint(round=number, score=score, overrides=Overrides(**overrides), released=released)


def view(*points: SyncPoint, finished: bool = False, score: float | None = None) -> ArmView:
    return ArmView(SyncStatus(points=list(points), score=score, overrides=Overrides()), finished)


def arm(name: str, config: AgentConfig) -> SiblingArm:
    return SiblingArm(workflow_id=name, config=config)


def test_a_conversation_waits_after_every_n_model_steps_once_each() -> None:
    assert propagation.due_round(None, state(2)) is None  # not a propagating arm
    assert propagation.due_round(EVERY_2, state(0)) is None  # never before the first step
    assert propagation.due_round(EVERY_2, state(1)) is None
    assert propagation.due_round(EVERY_2, state(2)) == 1
    assert propagation.due_round(EVERY_2, state(2, at(1, None, released=True))) is None
    assert propagation.due_round(EVERY_2, state(4, at(1, None, released=True))) == 2


def test_a_barrier_records_the_metric_s_mean_so_far_and_the_overrides_in_force() -> None:
    scored = [
        StackEntry(step=1, kind=State.TOOL_CALL, agent_id="a", evaluations=[outcome("judge", 0.5)]),
        StackEntry(
            step=3,
            kind=State.ASSISTANT_MESSAGE,
            agent_id="a",
            evaluations=[outcome("judge", 1.0), outcome("other", 0.0)],
        ),
    ]
    s = ConversationState(stack=scored, overrides=Overrides(model="scripted/other"))
    point = propagation.point(1, s, "judge")
    assert point.score == 0.75 and point.overrides.model == "scripted/other"
    assert propagation.point(1, s, "unscored").score is None  # no score yet is not a zero


def outcome(evaluator: str, value: float) -> EvalOutcome:
    return EvalOutcome(evaluator_id=evaluator, version="1", value=value)


def test_a_release_is_taken_only_at_the_barrier_the_conversation_waits_at() -> None:
    catalog = Catalog(tools=[ToolInfo(name="get_weather")])
    agent = load_catalog(Settings()).agent("agent_alpha")
    assert agent is not None
    waiting = state(2, at(1, None))

    def problem(s: ConversationState, release: Release) -> str | None:
        return release_problem(s, catalog, agent, release)

    assert problem(waiting, Release(round=1)) is None
    assert problem(waiting, Release(round=2)) == "the conversation waits at barrier 1, not 2"
    assert problem(state(2), Release(round=1)) == "the conversation waits at no barrier"
    assert problem(state(2, at(1, None, released=True)), Release(round=1)) is not None
    sourceless = Release(round=1, push=ConfigPatch(system_prompt="x"))
    assert problem(waiting, sourceless) == "a pushed config names its source"
    teleport = Release(round=1, push=ConfigPatch(tools=("teleport",)), source="c")
    assert "unknown tool 'teleport'" in str(problem(waiting, teleport))


def test_a_release_marks_the_barrier_passed_with_what_was_pushed() -> None:
    s = state(2, at(1, 0.2))
    push = ConfigPatch(system_prompt="Answer as a bullet list.")
    propagation.released(s, Release(round=1, push=push, source=BETTER.id))
    assert s.sync_points[-1].released and s.sync_points[-1].pushed == push
    assert propagation.waiting_at(s) is None


def test_pushed_overrides_set_only_the_pushed_knobs_and_keep_a_zero_temperature() -> None:
    pushed = Overrides(model="scripted/other").pushed(
        ConfigPatch(system_prompt="Be brief.", temperature=0.0, tools=("get_weather",))
    )
    assert pushed == Overrides(
        model="scripted/other", system_prompt="Be brief.", temperature=0.0, tools=["get_weather"]
    )
    assert pushed.on(PLAIN).temperature == 0.0 and pushed.on(PLAIN).tools == ("get_weather",)


def test_a_round_is_ready_when_every_arm_met_it_or_finished_before_it() -> None:
    waiting = view(at(1, None))
    assert next_round([waiting, view(finished=True, score=1.0)]) == 1
    assert next_round([waiting, view()]) is None  # one still on its way to the barrier
    assert next_round([view(finished=True), view(finished=True)]) is None  # none waits
    # An arm past barrier 1 (released before a crash) does not hold the others back.
    assert next_round([waiting, view(at(1, 0.5, released=True))]) == 1
    assert next_round([view(at(1, None, released=True), at(2, None)), view(at(1, None))]) == 1


def test_the_best_so_far_is_pushed_to_the_weaker_arms_that_wait() -> None:
    arms = [arm("plain", PLAIN), arm("better", BETTER), arm("other", OTHER)]
    views = [view(at(1, None)), view(finished=True, score=1.0), view(at(1, 0.5))]
    released = releases(arms, views, 1)
    assert [a.workflow_id for a, _ in released] == ["plain", "other"]  # the finished one is not
    for _, release in released:
        assert release.source == BETTER.id
        assert release.push == ConfigPatch(system_prompt=BETTER.system_prompt, temperature=0.0)
    assert pushes(arms, views) == []  # nothing recorded until the arms record it


def test_nothing_is_pushed_before_a_score_nor_to_an_arm_as_good_or_already_alike() -> None:
    arms = [arm("plain", PLAIN), arm("better", BETTER)]
    unscored = releases(arms, [view(at(1, None)), view(at(1, None))], 1)
    assert [r.push for _, r in unscored] == [None, None] and len(unscored) == 2
    as_good = releases(arms, [view(at(1, 1.0)), view(at(1, 1.0))], 1)
    assert [r.push for _, r in as_good] == [None, None]
    # An arm already running the best's knobs (pushed before) gets nothing more.
    alike = view(at(1, 0.0, system_prompt=BETTER.system_prompt, temperature=0.0))
    [(_, release)] = releases(arms, [alike, view(finished=True, score=1.0)], 1)
    assert release.push is None


def test_of_equal_bests_the_first_arm_s_config_is_pushed() -> None:
    arms = [arm("other", OTHER), arm("better", BETTER), arm("plain", PLAIN)]
    views = [view(finished=True, score=1.0), view(finished=True, score=1.0), view(at(1, 0.0))]
    [(_, release)] = releases(arms, views, 1)
    assert release.source == OTHER.id


def test_the_decision_reads_the_arms_at_the_barrier_not_as_they_are_now() -> None:
    """A worker died after releasing one arm of a round: the retry decides the rest alike."""
    arms = [arm("plain", PLAIN), arm("better", BETTER), arm("slow", PLAIN)]
    before = [view(at(1, 0.0)), view(at(1, 0.9)), view(at(1, 0.0))]
    first = dict((a.workflow_id, r) for a, r in releases(arms, before, 1))
    # "plain" was released with its push and has gone on to a score of 1.0 since.
    on = at(1, 0.0, released=True, system_prompt=BETTER.system_prompt, temperature=0.0)
    after = [view(on, score=1.0), view(at(1, 0.9)), view(at(1, 0.0))]
    again = dict((a.workflow_id, r) for a, r in releases(arms, after, 1))
    assert set(again) == {"better", "slow"} and again["slow"] == first["slow"]


def test_pushes_are_read_back_from_what_the_arms_recorded() -> None:
    arms = [arm("plain", PLAIN), arm("better", BETTER)]
    pushed = at(1, 0.0, released=True)
    pushed.pushed, pushed.source = ConfigPatch(system_prompt="x", temperature=0.0), BETTER.id
    [push] = pushes(arms, [view(pushed, finished=True), view(finished=True)])
    assert (push.round, push.arm, push.source, push.started_as) == (1, "plain", BETTER.id, PLAIN.id)
    assert push.knobs == ["system_prompt", "temperature"]


def test_a_propagating_generation_runs_the_parent_beside_the_next_best() -> None:
    validation = {"p": {"t": 0.5}, "q": {"t": 0.9}, "r": {"t": 0.7}, "s": {"t": 0.1}}
    assert siblings("p", validation, "end") == ["p"]
    assert siblings("p", validation, EveryN(every=1, siblings=3)) == ["p", "q", "r"]
    assert siblings("s", validation, EveryN(every=1, siblings=8)) == ["s", "q", "r", "p"]
