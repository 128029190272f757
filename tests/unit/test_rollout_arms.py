"""What the rollout workflow starts for an arm and keeps of it (workflows/arms.py), and the
plan that makes the arms one at a time from their index (workflows/expansion.py's ArmPlan).
Pure functions, tested without Temporal."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.common import SearchAttributeKey

from p2engine.contract.agent import AgentLimits, AgentSpec
from p2engine.contract.evals import (
    EvalOutcome,
    EvaluatorInfo,
    RewardOutcome,
    RewardPolicy,
    Threshold,
)
from p2engine.contract.models import Catalog, ConversationResult, StackEntry, ToolInfo
from p2engine.contract.rollouts import (
    Arm,
    ArmRecord,
    ArmStatus,
    RolloutInput,
    RolloutSpec,
    Team,
    TeamEval,
    Variant,
    VariantTally,
    WalletChange,
)
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.workflows.arms import (
    arm_id,
    arm_input,
    arm_plan,
    arm_search_attributes,
    arm_timeout,
    budget_spent,
    empty_tallies,
    finished_record,
    rollout_details,
    tally,
    unfinished_record,
    wallet_changes,
)
from p2engine.workflows.expansion import ArmPlan, ExpansionError, PlannedVariant

CATALOG = Catalog(
    agents=[
        AgentSpec(id="agent_alpha", model="scripted/default", tools=["get_weather"]),
        AgentSpec(id="agent_beta", limits=AgentLimits(max_cost=1.0)),
    ],
    tools=[ToolInfo(name="get_weather"), ToolInfo(name="delegate")],
    personas=["critic"],
    evaluators=[
        EvaluatorInfo(id="helpful", version="1", trigger="step"),
        EvaluatorInfo(id="concise", version="1", trigger="final"),
    ],
)
AGENTS = {a.id: a for a in CATALOG.agents}
ALPHA = AGENTS["agent_alpha"]
ROLLOUT = "rollout-7"


def team(
    *variants: Variant,
    evaluator: str | None = "helpful",
    pass_score: float = 0.5,
    timeout_sec: float = 900,
    agent_id: str = "agent_alpha",
    message: str | None = "Tell me a joke.",
) -> Team:
    evaluation = (
        TeamEval(evaluator_id=evaluator, pass_score=pass_score, timeout_sec=timeout_sec)
        if evaluator is not None
        else None
    )
    return Team(
        initial_message=message,
        base=Variant(agent_id=agent_id),
        variants=list(variants) or [Variant(id="a")],
        eval=evaluation,
    )


def spec(budget: str | None = None, **teams: Team) -> RolloutSpec:
    return RolloutSpec(
        teams=teams or {"t": team()}, budget=Decimal(budget) if budget is not None else None
    )


def arm(
    team_name: str = "t",
    variant: str = "a",
    *,
    agent: AgentSpec = ALPHA,
    message: str = "Tell me a joke.",
    case: int = 0,
    repeat: int = 0,
    order: int = 0,
) -> Arm:
    label = f"c{case}-r{repeat}"
    return Arm(
        key=f"{team_name}/{variant}/{label}",
        team=team_name,
        variant=variant,
        order=order,
        case=case,
        repeat=repeat,
        agent=agent,
        message=message,
    )


def rollout_input(the_spec: RolloutSpec, model: str | None = None) -> RolloutInput:
    return RolloutInput(
        name="jokes",
        spec=the_spec,
        catalog=CATALOG,
        model=model,
        revision=3,
        continue_as_new_events=777,
        rewards=RewardPolicy(
            budget=Decimal("1.00"), thresholds=[Threshold(min=0.5, amount=Decimal("0.10"))]
        ),
    )


def outcome(
    evaluator: str, value: float | None, reward: RewardOutcome | None = None
) -> EvalOutcome:
    return EvalOutcome(
        evaluator_id=evaluator,
        version="1",
        value=value,
        error=None if value is not None else "judge failed",
        reward=reward,
    )


def entry(
    kind: State, step: int = 1, preview: str = "", evaluations: list[EvalOutcome] | None = None
) -> StackEntry:
    return StackEntry(
        step=step,
        kind=kind,
        agent_id="agent_alpha",
        preview=preview,
        evaluations=evaluations or [],
    )


def result(
    stack: list[StackEntry],
    reason: FinishReason = FinishReason.DONE,
    usage: Usage | None = None,
    eval_usage: Usage | None = None,
    steps: int = 3,
) -> ConversationResult:
    return ConversationResult(
        conversation_id=f"{ROLLOUT}/t/a/c0-r0",
        agent_id="agent_alpha",
        reason=reason,
        steps=steps,
        usage=usage or Usage(),
        stack=stack,
        eval_usage=eval_usage or Usage(),
        score=0.99,  # the mean of every evaluation: never the team's metric
    )


def scored_stack(*values: float, evaluator: str = "helpful") -> list[StackEntry]:
    return [
        entry(State.USER_MESSAGE, 0, "Tell me a joke."),
        *(
            entry(State.ASSISTANT_MESSAGE, n, "reply", [outcome(evaluator, v)])
            for n, v in enumerate(values, start=1)
        ),
        entry(State.FINISHED, len(values) + 1, "bye"),
    ]


# --- ids, inputs, search attributes, timeouts ---------------------------------------------


def test_an_arms_workflow_id_is_the_rollouts_id_then_its_key() -> None:
    the_arm = arm("jokes", "warm", case=2, repeat=1)
    assert arm_id("ro-1", the_arm) == "ro-1/jokes/warm/c2-r1"


def test_arm_input_runs_the_arms_agent_on_its_message_with_the_rollouts_settings() -> None:
    inp = rollout_input(spec())
    the_arm = arm(message="Why is the sky blue?")
    conversation = arm_input(inp, the_arm)
    assert conversation.agent == ALPHA  # no model override, no budget: the agent as it is
    assert conversation.message == "Why is the sky blue?"
    assert conversation.catalog == CATALOG
    assert conversation.revision == 3
    assert conversation.continue_as_new_events == 777
    assert conversation.rewards == inp.rewards


def test_arm_input_replaces_the_agents_model_with_the_rollouts() -> None:
    conversation = arm_input(rollout_input(spec(), model="scripted/other"), arm())
    assert conversation.agent.model == "scripted/other"
    assert ALPHA.model == "scripted/default"  # the arm's own agent is left as it was
    assert conversation.agent.model_dump(exclude={"model"}) == ALPHA.model_dump(exclude={"model"})


def test_arm_input_caps_an_uncapped_agent_at_the_whole_budget() -> None:
    assert ALPHA.limits.max_cost is None
    conversation = arm_input(rollout_input(spec(budget="2.50")), arm())
    assert conversation.agent.limits.max_cost == 2.5
    assert conversation.agent.limits.max_steps == ALPHA.limits.max_steps


def test_arm_input_lowers_an_agents_cap_above_the_budget_to_the_budget() -> None:
    rich = ALPHA.model_copy(update={"limits": AgentLimits(max_cost=5.0)})
    conversation = arm_input(rollout_input(spec(budget="2.50")), arm(agent=rich))
    assert conversation.agent.limits.max_cost == 2.5


def test_arm_input_keeps_an_agents_own_cap_below_the_budget() -> None:
    beta = AGENTS["agent_beta"]
    assert beta.limits.max_cost == 1.0
    conversation = arm_input(rollout_input(spec(budget="2.50")), arm(agent=beta))
    assert conversation.agent.limits.max_cost == 1.0


def test_arm_input_without_a_budget_leaves_the_agents_cap_alone() -> None:
    beta = AGENTS["agent_beta"]
    assert arm_input(rollout_input(spec()), arm(agent=ALPHA)).agent.limits.max_cost is None
    assert arm_input(rollout_input(spec()), arm(agent=beta)).agent.limits.max_cost == 1.0


def test_arm_input_names_the_teams_evaluator_and_none_without_one() -> None:
    two = spec(t=team(evaluator="concise"), u=team(evaluator=None))
    assert arm_input(rollout_input(two), arm("t")).evaluators == ["concise"]
    assert arm_input(rollout_input(two), arm("u")).evaluators == []


def test_an_arm_shows_its_agent_rollout_and_team_variant_to_the_web_ui() -> None:
    attributes = arm_search_attributes("ro-1", arm("jokes", "warm", agent=AGENTS["agent_beta"]))
    assert attributes.get(SearchAttributeKey.for_keyword("P2eAgent")) == "agent_beta"
    assert attributes.get(SearchAttributeKey.for_keyword("P2eRollout")) == "ro-1"
    assert attributes.get(SearchAttributeKey.for_keyword("P2eVariant")) == "jokes/warm"
    assert len(attributes) == 3


def test_an_arm_times_out_after_its_teams_eval_timeout_and_never_without_an_eval() -> None:
    the_spec = spec(
        t=team(timeout_sec=120),
        d=team(),
        u=team(evaluator=None),
    )
    assert arm_timeout(the_spec, arm("t")) == timedelta(minutes=2)
    assert arm_timeout(the_spec, arm("d")) == timedelta(minutes=15)  # TeamEval's default
    assert arm_timeout(the_spec, arm("u")) is None


# --- records --------------------------------------------------------------------------------


def test_a_finished_record_carries_the_arms_identity() -> None:
    the_arm = arm("t", "a", message="Why?", case=1, repeat=2, order=4)
    record = finished_record(ROLLOUT, spec(), the_arm, result(scored_stack(0.8)), 1.5)
    assert (record.key, record.team, record.variant) == ("t/a/c1-r2", "t", "a")
    assert (record.order, record.case, record.repeat) == (4, 1, 2)
    assert record.case_id == hashlib.sha256(b"Why?").hexdigest()[:16]
    assert record.agent_id == "agent_alpha"
    assert record.workflow_id == "rollout-7/t/a/c1-r2"


def test_arms_on_the_same_message_share_a_case_id_and_others_do_not() -> None:
    same = [arm(variant=v, message="hi") for v in ("a", "b")]
    other = arm(variant="c", message="hello")
    ids = [finished_record(ROLLOUT, spec(), a, result([]), 0).case_id for a in [*same, other]]
    assert ids[0] == ids[1] != ids[2]


def test_the_score_is_the_mean_of_the_teams_evaluator_alone() -> None:
    stack = [
        entry(State.USER_MESSAGE, 0),
        entry(State.ASSISTANT_MESSAGE, 1, evaluations=[outcome("helpful", 0.2)]),
        entry(
            State.ASSISTANT_MESSAGE,
            2,
            evaluations=[
                outcome("helpful", 0.6),
                outcome("concise", 1.0),
                outcome("helpful", None),
            ],
        ),
        entry(State.ASSISTANT_MESSAGE, 3, evaluations=[outcome("concise", 0.9)]),
    ]
    record = finished_record(ROLLOUT, spec(), arm(), result(stack), 0)
    assert record.score == pytest.approx((0.2 + 0.6) / 2)


def test_without_a_team_evaluator_the_score_is_the_mean_of_every_evaluation() -> None:
    stack = [
        entry(State.ASSISTANT_MESSAGE, 1, evaluations=[outcome("helpful", 0.2)]),
        entry(State.ASSISTANT_MESSAGE, 2, evaluations=[outcome("concise", 0.8), outcome("x", 0.5)]),
    ]
    the_spec = spec(t=team(evaluator=None))
    assert finished_record(ROLLOUT, the_spec, arm(), result(stack), 0).score == pytest.approx(0.5)


def test_a_team_evaluator_that_never_scored_gives_no_score() -> None:
    stack = scored_stack(0.9, evaluator="concise")
    assert finished_record(ROLLOUT, spec(), arm(), result(stack), 0).score is None


def test_the_reward_sums_only_the_paid_rewards() -> None:
    paid = [RewardOutcome(status="paid", amount=Decimal(a)) for a in ("0.30", "0.25")]
    stack = [
        entry(State.ASSISTANT_MESSAGE, 1, evaluations=[outcome("helpful", 0.9, paid[0])]),
        entry(
            State.ASSISTANT_MESSAGE,
            2,
            evaluations=[
                outcome("helpful", 0.8, RewardOutcome(status="skipped", amount=Decimal("1.00"))),
                outcome("concise", 0.7, paid[1]),
            ],
        ),
        entry(
            State.ASSISTANT_MESSAGE,
            3,
            evaluations=[
                outcome("helpful", 0.6, RewardOutcome(status="failed", amount=Decimal("2.00"))),
                outcome("helpful", 0.5),
            ],
        ),
    ]
    record = finished_record(ROLLOUT, spec(), arm(), result(stack), 0)
    assert record.reward == Decimal("0.55")
    assert finished_record(ROLLOUT, spec(), arm(), result(scored_stack(0.5)), 0).reward == 0


def test_the_cost_includes_what_the_judges_spent_and_says_it_apart() -> None:
    usage = Usage(prompt_tokens=120, completion_tokens=30, cost_usd=0.010)
    judges = Usage(prompt_tokens=999, completion_tokens=99, cost_usd=0.002)
    record = finished_record(
        ROLLOUT, spec(), arm(), result(scored_stack(0.5), usage=usage, eval_usage=judges), 0
    )
    assert record.cost_usd == pytest.approx(0.012)
    assert record.judge_cost_usd == pytest.approx(0.002)
    # Tokens are the agent's own: the judges' are not the variant's.
    assert (record.prompt_tokens, record.completion_tokens, record.tokens) == (120, 30, 150)


def test_the_latency_and_steps_are_the_conversations() -> None:
    record = finished_record(ROLLOUT, spec(), arm(), result([], steps=7), 12.25)
    assert (record.latency_s, record.steps) == (12.25, 7)


def test_tool_calls_count_the_tool_and_agent_calls_on_the_stack() -> None:
    kinds = [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.TOOL_RESULT,
        State.AGENT_CALL,
        State.AGENT_RESULT,
        State.ASSISTANT_MESSAGE,
        State.WAITING,
        State.FINISHED,
    ]
    stack = [entry(kind, n) for n, kind in enumerate(kinds)]
    assert finished_record(ROLLOUT, spec(), arm(), result(stack), 0).tool_calls == 3


def test_a_conversation_done_is_a_done_record_without_an_error() -> None:
    record = finished_record(ROLLOUT, spec(), arm(), result(scored_stack(0.8)), 0)
    assert (record.status, record.reason, record.error) == ("done", "done", None)


@pytest.mark.parametrize(
    "reason",
    [FinishReason.MAX_STEPS, FinishReason.BUDGET, FinishReason.TIMEOUT, FinishReason.ERROR],
)
def test_a_conversation_ended_short_of_done_fails_with_its_last_words(
    reason: FinishReason,
) -> None:
    stack = [
        entry(State.USER_MESSAGE, 0, "hi"),
        entry(State.FINISHED, 1, "an earlier end"),
        entry(State.ASSISTANT_MESSAGE, 2, "still talking", [outcome("helpful", 0.9)]),
        entry(State.FINISHED, 3, "stopped: the step limit (20) was reached"),
    ]
    record = finished_record(ROLLOUT, spec(), arm(), result(stack, reason=reason), 0)
    assert record.status == "failed"
    assert record.reason == reason.value
    assert record.error == "stopped: the step limit (20) was reached"
    assert record.score == pytest.approx(0.9)  # what it scored before it failed is kept
    assert record.passed is False


def test_a_failed_conversation_with_no_finished_words_says_how_it_ended() -> None:
    stack = [entry(State.USER_MESSAGE, 0, "hi"), entry(State.FINISHED, 1, "")]
    record = finished_record(ROLLOUT, spec(), arm(), result(stack, FinishReason.BUDGET), 0)
    assert record.error == "ended: budget"
    no_finish = result([entry(State.USER_MESSAGE, 0, "hi")], FinishReason.ERROR)
    assert finished_record(ROLLOUT, spec(), arm(), no_finish, 0).error == "ended: error"


@pytest.mark.parametrize(
    ("value", "pass_score", "passed"),
    [
        (0.69, 0.7, False),
        (0.7, 0.7, True),
        (0.95, 0.7, True),
        (0.3, 0.25, True),
        (0.2, 0.25, False),
    ],
)
def test_passed_is_the_score_reaching_the_teams_pass_score(
    value: float, pass_score: float, passed: bool
) -> None:
    the_spec = spec(t=team(pass_score=pass_score))
    record = finished_record(ROLLOUT, the_spec, arm(), result(scored_stack(value)), 0)
    assert record.passed is passed


def test_without_a_team_eval_the_pass_score_is_one_half() -> None:
    the_spec = spec(t=team(evaluator=None))
    low = finished_record(ROLLOUT, the_spec, arm(), result(scored_stack(0.49)), 0)
    high = finished_record(ROLLOUT, the_spec, arm(), result(scored_stack(0.5)), 0)
    assert (low.passed, high.passed) == (False, True)


def test_an_arm_whose_evaluator_never_scored_has_not_passed() -> None:
    # ArmRecord.passed: "done, and the score reached pass_score"; with no score from the
    # team's evaluator (its judge failed every time) it reached nothing.
    stack = [
        entry(State.USER_MESSAGE, 0, "hi"),
        entry(State.ASSISTANT_MESSAGE, 1, "reply", [outcome("helpful", None)]),
        entry(State.FINISHED, 2, "bye"),
    ]
    record = finished_record(ROLLOUT, spec(), arm(), result(stack), 0)
    assert record.score is None
    assert record.passed is False


@pytest.mark.parametrize("status", ["failed", "cancelled", "skipped"])
def test_an_unfinished_record_has_its_identity_status_and_error_and_nothing_else(
    status: ArmStatus,
) -> None:
    the_arm = arm("t", "b", message="hi", case=1, repeat=3, order=2)
    record = unfinished_record(ROLLOUT, the_arm, status, "the budget is spent")
    assert (record.status, record.error, record.reason) == (status, "the budget is spent", None)
    assert record.workflow_id == "rollout-7/t/b/c1-r3"
    assert (record.key, record.order, record.case, record.repeat) == ("t/b/c1-r3", 2, 1, 3)
    assert record.case_id == hashlib.sha256(b"hi").hexdigest()[:16]
    assert (record.score, record.passed, record.reward) == (None, False, Decimal(0))
    assert (record.tokens, record.cost_usd, record.latency_s, record.steps) == (0, 0.0, 0.0, 0)


# --- tallies, budget, wallets, details ------------------------------------------------------


def planned(team_name: str, variant: str) -> PlannedVariant:
    return PlannedVariant(team=team_name, variant=variant, agent=ALPHA, config="", messages=["hi"])


def record(
    variant: str,
    status: ArmStatus = "done",
    score: float | None = None,
    *,
    passed: bool = False,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
    latency: float = 0.0,
    reward: str = "0",
) -> ArmRecord:
    return ArmRecord(
        key=f"t/{variant}/r0",
        team="t",
        variant=variant,
        case=0,
        repeat=0,
        case_id="c",
        agent_id="agent_alpha",
        workflow_id=f"{ROLLOUT}/t/{variant}/r0",
        status=status,
        score=score,
        passed=passed,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=cost,
        latency_s=latency,
        reward=Decimal(reward),
    )


def test_empty_tallies_have_one_per_variant_in_order_with_its_arm_count() -> None:
    tallies = empty_tallies([planned("t", "a"), planned("u", "b"), planned("t", "c")], 6)
    assert [(t.key, t.total, t.finished) for t in tallies] == [
        ("t/a", 6, 0),
        ("u/b", 6, 0),
        ("t/c", 6, 0),
    ]


def test_a_tally_adds_each_arm_to_its_own_variant() -> None:
    tallies = empty_tallies([planned("t", "a"), planned("t", "b")], 4)
    records = [
        record("a", "done", 0.5, passed=True, tokens=(10, 5), cost=0.01, latency=1.0, reward="0.1"),
        record("a", "done", 0.25, tokens=(20, 10), cost=0.02, latency=2.0),
        record("a", "failed", 0.75, tokens=(1, 1), cost=0.005, latency=0.5),
        record("a", "skipped"),
        record("b", "cancelled"),
        record("b", "failed", None, tokens=(3, 0), cost=0.001, latency=4.0),
    ]
    for r in records:
        tally(tallies, r)
    a, b = tallies
    assert (a.done, a.failed, a.skipped, a.cancelled, a.finished) == (2, 1, 1, 0, 4)
    assert (a.scored, a.passed) == (3, 1)
    assert a.score_sum == pytest.approx(0.5 + 0.25 + 0.75)
    assert a.score_squares == pytest.approx(0.25 + 0.0625 + 0.5625)
    assert a.tokens == 15 + 30 + 2
    assert a.cost_usd == pytest.approx(0.035)
    assert a.latency_s == pytest.approx(3.5)
    assert a.reward == Decimal("0.1")
    assert (b.done, b.failed, b.skipped, b.cancelled, b.finished) == (0, 1, 0, 1, 2)
    assert (b.scored, b.score_sum, b.tokens, b.latency_s) == (0, 0.0, 3, 4.0)


def test_no_budget_is_never_spent() -> None:
    assert budget_spent(spec(), 1e9) is False


@pytest.mark.parametrize(("spent", "over"), [(0.0, False), (0.99, False), (1.0, True), (1.5, True)])
def test_the_budget_is_spent_once_the_arms_have_spent_all_of_it(spent: float, over: bool) -> None:
    assert budget_spent(spec(budget="1.00"), spent) is over


def test_wallet_changes_list_the_changed_wallets_in_order_with_new_ones_from_zero() -> None:
    before = {"zed": Decimal("10.00"), "amy": Decimal("5.00"), "gone": Decimal("1.00")}
    after = {
        "zed": Decimal("12.50"),
        "amy": Decimal("5.00"),
        "bob": Decimal("3.00"),
        "gone": Decimal("1.00"),
    }
    assert wallet_changes(before, after) == [
        WalletChange(agent="bob", before=Decimal(0), after=Decimal("3.00")),
        WalletChange(agent="zed", before=Decimal("10.00"), after=Decimal("12.50")),
    ]
    assert wallet_changes(before, before) == []


def test_the_rollouts_details_say_how_far_it_is_what_it_spent_and_each_variants_score() -> None:
    a = VariantTally(team="t", variant="a", total=5, done=2, failed=1, scored=3, score_sum=2.0)
    a.tokens, a.cost_usd = 300, 0.0125
    b = VariantTally(team="u", variant="b", total=5, skipped=1, cancelled=1, failed=2, tokens=45)
    details = rollout_details("running", 10, [a, b], running=3)
    assert details.splitlines() == [
        "**running** · 7/10 arms · 3 running · 3 failed · 345 tokens · $0.0125",
        "- t/a: 3/5 · score 0.67",  # 2.0 / 3, shown to 2 places
        "- u/b: 4/5",
    ]


# --- the arm plan ----------------------------------------------------------------------------


def plan_spec(repeats: int = 2, max_arms: int = 10_000) -> RolloutSpec:
    return RolloutSpec(
        repeats=repeats,
        max_arms=max_arms,
        teams={
            "t": Team(
                initial_message="hi",
                base=Variant(agent_id="agent_alpha"),
                variants=[Variant(id="cold", temperature=0.1), Variant(id="hot", temperature=1.5)],
            ),
            "u": Team(
                initial_message="hello",
                base=Variant(agent_id="agent_beta", model="scripted/beta"),
                variants=[Variant(id="only")],
            ),
        },
    )


INPUTS = ["weather in Paris", "weather in Oslo"]


def vkey(the_arm: Arm) -> str:
    return f"{the_arm.team}/{the_arm.variant}"


def test_a_plan_counts_every_variant_on_every_case_every_repeat() -> None:
    plan = ArmPlan(plan_spec(repeats=2), AGENTS, INPUTS)
    assert (plan.total, plan.cases, plan.repeats) == (3 * 2 * 2, 2, 2)
    assert [(v.team, v.variant) for v in plan.variants] == [
        ("t", "cold"),
        ("t", "hot"),
        ("u", "only"),
    ]
    assert all(v.messages == INPUTS for v in plan.variants)


def test_plan_arms_go_round_the_variants_before_any_runs_its_next_case_or_repeat() -> None:
    plan = ArmPlan(plan_spec(repeats=2), AGENTS, INPUTS)
    arms = [plan.arm(i) for i in range(plan.total)]
    # Each block of 3 (one per variant) is one (case, repeat); cases go before repeats.
    for block, (case, repeat) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        chunk = arms[3 * block : 3 * block + 3]
        assert [vkey(a) for a in chunk] == ["t/cold", "t/hot", "u/only"]
        assert [a.order for a in chunk] == [0, 1, 2]
        assert {(a.case, a.repeat) for a in chunk} == {(case, repeat)}
        assert {a.message for a in chunk} == {INPUTS[case]}
        assert [a.key for a in chunk] == [
            f"t/cold/c{case}-r{repeat}",
            f"t/hot/c{case}-r{repeat}",
            f"u/only/c{case}-r{repeat}",
        ]
    assert len({a.key for a in arms}) == plan.total
    assert {(vkey(a), a.case, a.repeat) for a in arms} == {
        (v, c, r) for v in ("t/cold", "t/hot", "u/only") for c in (0, 1) for r in (0, 1)
    }


def test_plan_arms_carry_their_variants_agent() -> None:
    plan = ArmPlan(plan_spec(repeats=1), AGENTS, INPUTS)
    cold, hot, only = (plan.arm(i) for i in range(3))
    assert (cold.agent.id, cold.agent.temperature, cold.agent.model) == (
        "agent_alpha",
        0.1,
        "scripted/default",
    )
    assert hot.agent.temperature == 1.5
    assert (only.agent.id, only.agent.model) == ("agent_beta", "scripted/beta")


def test_with_one_case_a_plans_labels_are_repeats_and_the_message_the_teams() -> None:
    plan = ArmPlan(plan_spec(repeats=2), AGENTS, [])
    assert plan.cases == 1 and plan.total == 3 * 2
    assert [plan.arm(i).key for i in range(plan.total)] == [
        "t/cold/r0",
        "t/hot/r0",
        "u/only/r0",
        "t/cold/r1",
        "t/hot/r1",
        "u/only/r1",
    ]
    assert [plan.arm(i).message for i in range(3)] == ["hi", "hi", "hello"]


def test_a_plans_arm_at_an_index_is_the_same_in_any_order() -> None:
    plan = ArmPlan(plan_spec(repeats=3), AGENTS, INPUTS)
    assert plan.total == 3 * 2 * 3
    # Round the variants, then the cases, then the repeats.
    expected = [
        (f"{v}/c{case}-r{repeat}", INPUTS[case])
        for repeat in range(3)
        for case in range(2)
        for v in ("t/cold", "t/hot", "u/only")
    ]
    # Made from the index alone: asked backwards, or twice, the same arms.
    for index in reversed(range(plan.total)):
        assert (plan.arm(index).key, plan.arm(index).message) == expected[index]
    assert plan.arm(5) == plan.arm(5)


def test_a_plan_of_ten_thousand_arms_makes_its_last_arm_directly() -> None:
    the_spec = plan_spec(repeats=5, max_arms=10_000)
    inputs = [f"case {n}" for n in range(666)]  # 3 variants * 666 cases * 5 repeats = 9990
    plan = ArmPlan(the_spec, AGENTS, inputs)
    assert plan.total == 9990
    last = plan.arm(plan.total - 1)
    assert (vkey(last), last.case, last.repeat) == ("u/only", 665, 4)
    assert (last.key, last.message) == ("u/only/c665-r4", "case 665")


def test_a_plan_over_max_arms_is_refused() -> None:
    with pytest.raises(ExpansionError, match=r"12 arms is more than max_arms \(11\)") as error:
        ArmPlan(plan_spec(repeats=2, max_arms=11), AGENTS, INPUTS)
    assert error.value.where == "teams"


def test_a_plan_of_exactly_max_arms_runs() -> None:
    assert ArmPlan(plan_spec(repeats=2, max_arms=12), AGENTS, INPUTS).total == 12


def grid_team(grid: Mapping[str, Sequence[object]]) -> RolloutSpec:
    base = Variant(agent_id="agent_alpha", initial_message="hi")
    return RolloutSpec(teams={"g": Team(base=base, variants={k: list(v) for k, v in grid.items()})})


def test_a_grid_variant_is_named_by_the_keys_that_vary_with_providers_joined_by_a_colon() -> None:
    grid: dict[str, list[object]] = {
        "model": ["openai/gpt-4o-mini", "scripted/b"],
        "temperature": [0.2],
        "top_p": [0.5, 1],
    }
    plan = ArmPlan(grid_team(grid), AGENTS, [])
    assert [v.variant for v in plan.variants] == [
        "model=openai:gpt-4o-mini,top_p=0.5",
        "model=openai:gpt-4o-mini,top_p=1",
        "model=scripted:b,top_p=0.5",
        "model=scripted:b,top_p=1",
    ]
    # The name says what varies; the agent still runs the model as written.
    assert plan.arm(0).agent.model == "openai/gpt-4o-mini"
    assert [plan.arm(i).key.count("/") for i in range(4)] == [2, 2, 2, 2]


def test_a_grid_of_one_value_per_key_is_named_by_every_key() -> None:
    plan = ArmPlan(grid_team({"temperature": [0.2], "max_tokens": [64]}), AGENTS, [])
    assert [v.variant for v in plan.variants] == ["temperature=0.2,max_tokens=64"]


def test_lists_nulls_and_long_values_in_a_grid_name() -> None:
    long = "Please say in one long sentence what the weather is in Paris"
    grid: dict[str, list[object]] = {
        "tools": [["get_weather", "search"], []],
        "persona": [None, "critic"],
        "initial_message": ["hi", long, "a, b"],
    }
    names = [v.variant for v in ArmPlan(grid_team(grid), AGENTS, []).variants]
    assert names[:3] == [
        "tools=get_weather+search,persona=none,initial_message=hi",
        "tools=get_weather+search,persona=none,initial_message#2",
        "tools=get_weather+search,persona=none,initial_message#3",
    ]
    assert names[-1] == "tools=none,persona=critic,initial_message#3"
    assert len(set(names)) == 2 * 2 * 3


def test_values_that_name_alike_are_refused_as_one_variant_twice() -> None:
    with pytest.raises(ExpansionError, match="variant id 'model=a:b' is used twice in team g"):
        ArmPlan(grid_team({"model": ["a/b", "a:b"]}), AGENTS, [])


def test_a_rollout_started_before_grid_names_numbers_its_grid_variants_as_it_did() -> None:
    the_spec = grid_team({"temperature": [0.2, 0.8]})
    old = arm_plan(rollout_input(the_spec).model_copy(update={"revision": 4}))
    new = arm_plan(rollout_input(the_spec).model_copy(update={"revision": 5}))
    assert [v.variant for v in old.variants] == ["v001", "v002"]
    assert [v.variant for v in new.variants] == ["temperature=0.2", "temperature=0.8"]
    assert old.arm(1).agent.temperature == new.arm(1).agent.temperature == 0.8
