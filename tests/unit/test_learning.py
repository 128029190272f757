"""The learning loop's decisions (workflows/learning_plan.py) and its file (runtime/learning.py):
the split, the budget by arithmetic, the minibatch, the Pareto parent, and every bad learn
file refused in one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig, ConfigPatch
from p2engine.contract.errors import ConfigError
from p2engine.contract.learning import Budget, Dataset, HeldOutComparison, LearnSpec, Split, Tasks
from p2engine.contract.rollouts import Estimate
from p2engine.runtime.catalog import load_catalog
from p2engine.runtime.learning import load_learn
from p2engine.runtime.settings import PROJECT_ROOT, Settings
from p2engine.workflows.expansion import ArmPlan
from p2engine.workflows.learning_plan import (
    LearnPlanError,
    arms_needed,
    best,
    choose_parent,
    improved,
    minibatch,
    pareto_front,
    scoring_rollout,
    split_tasks,
    verdict,
)

TASKS = [f"What's the weather in city {n}?" for n in range(20)]
CATALOG = load_catalog(Settings())


def test_a_split_puts_each_distinct_task_in_one_part_by_the_seed() -> None:
    parts = split_tasks([*TASKS, TASKS[0]], Split(train=0.5, validation=0.25), seed=7)
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (10, 5, 5)
    assert sorted(parts.train + parts.validation + parts.test) == sorted(TASKS)
    assert split_tasks(TASKS, Split(), seed=7) == parts  # the same seed, the same split
    assert split_tasks(TASKS, Split(), seed=8) != parts


def test_a_split_that_leaves_a_part_empty_is_refused() -> None:
    with pytest.raises(LearnPlanError, match="3 tasks leave the validation part empty"):
        split_tasks(TASKS[:3], Split(train=0.6, validation=0.1), seed=0)
    with pytest.raises(LearnPlanError, match="has no tasks"):
        split_tasks([], Split(), seed=0)


def test_the_arms_a_run_needs_are_counted_before_it_starts() -> None:
    spec = LearnSpec(
        agent="agent_alpha", evaluator="weather_report", dataset=Dataset(inputs=TASKS),
        budget=Budget(generations=3, minibatch=4), test_repeats=2,
    )  # fmt: skip
    tasks = Tasks(train=TASKS[:10], validation=TASKS[10:15], test=TASKS[15:])
    # baseline on validation + 3 x (minibatch + validation) + 2 configs x test x repeats
    assert arms_needed(spec, tasks) == 5 + 3 * (4 + 5) + 2 * 5 * 2


def test_a_minibatch_is_a_seeded_draw_of_train_tasks_another_each_generation() -> None:
    first = minibatch(TASKS, 4, seed=7, generation=1)
    assert len(first) == 4 and set(first) <= set(TASKS)
    assert minibatch(TASKS, 4, seed=7, generation=1) == first
    assert minibatch(TASKS, 4, seed=7, generation=2) != first
    assert sorted(minibatch(TASKS[:3], 10, seed=7, generation=1)) == sorted(TASKS[:3])


def test_the_pareto_front_keeps_each_task_s_best_and_drops_the_dominated() -> None:
    validation = {
        "base": {"a": 0.2, "b": 0.2, "c": 0.2},
        "wide": {"a": 0.9, "b": 0.8, "c": 0.1},  # best on a and b
        "narrow": {"a": 0.1, "b": 0.1, "c": 0.9},  # best on c only
        "worse": {"a": 0.1, "b": 0.1, "c": 0.1},  # best on nothing
    }
    assert pareto_front(validation) == ["wide", "narrow"]
    assert best(validation) == "wide"
    parents = {choose_parent(validation, seed=7, generation=g) for g in range(1, 40)}
    assert parents == {"wide", "narrow"}  # both drawn, never a dominated one
    assert choose_parent(validation, 7, 3) == choose_parent(validation, 7, 3)


def test_a_tie_for_the_best_mean_goes_to_the_earliest_candidate() -> None:
    assert best({"base": {"a": 0.5}, "same": {"a": 0.5}}) == "base"


def test_a_candidates_arms_record_the_candidates_config_its_persona_text_included() -> None:
    texts = {"weather_expert": "You are $agent_id; weather is your trade."}
    agent = AgentSpec(
        id="agent_helper", model="scripted/default", persona="weather_expert", tools=["get_weather"]
    )
    base = AgentConfig.of(agent, texts)
    cited = ConfigPatch(system_prompt="Cite the tool you used.").apply(base)
    spec = LearnSpec(
        agent="agent_helper", evaluator="weather_report", dataset=Dataset(inputs=TASKS)
    )
    rollout = scoring_rollout([base, cited], spec)
    plan = ArmPlan(rollout, {"agent_helper": agent}, TASKS[:1], personas=texts)
    assert [v.config for v in plan.variants] == [base.id, cited.id]
    assert base.persona_text == texts["weather_expert"]


def test_a_scoring_rollout_runs_each_config_as_a_variant_against_the_first() -> None:
    agent = AgentSpec(id="agent_alpha", model="scripted/default", tools=["get_weather"])
    base = AgentConfig.of(agent, {})
    cited = ConfigPatch(system_prompt="Cite the tool you used.").apply(base)
    spec = LearnSpec(agent="agent_alpha", evaluator="weather_report", dataset=Dataset(inputs=TASKS))
    rollout = scoring_rollout([base, cited, base], spec, repeats=2)
    team = rollout.teams["learn"]
    assert [v.id for v in team.variants] == [base.id, cited.id]  # type: ignore[union-attr]
    assert rollout.baseline == f"learn/{base.id}" and rollout.repeats == 2
    assert team.eval is not None and team.eval.evaluator_id == "weather_report"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "learn.yml"
    path.write_text(text)
    return path


GOOD = """\
agent: agent_alpha
evaluator: weather_report
dataset:
  inputs: [a, b, c, d, e, f, g, h]
"""


def test_the_shipped_demo_and_control_files_load() -> None:
    for name in ("demo", "control", "propagate"):
        learned = load_learn(PROJECT_ROOT / "config" / "learn" / f"{name}.yml", CATALOG)
        assert learned.tasks.test and learned.arms <= learned.spec.budget.max_arms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "knobs:\n  persona_text: true\n", r":6: 'knobs\.persona_text': Extra inputs"),
        (GOOD.replace("[a, b, c, d, e, f, g, h]", "[]"), r":3: 'dataset': give inputs or a file"),
        (GOOD.replace("[a, b, c, d, e, f, g, h]", "[a, b]"),
         r":3: 'dataset\.split': 2 tasks leave the validation part empty"),
        (GOOD + "dataset_extra: 1\n", r":5: 'dataset_extra': Extra inputs"),
        (GOOD + "budget: {max_arms: 5}\n",
         r":5: 'budget\.max_arms': 3 generations need 32 arms, more than 5"),
        (GOOD + "proposer_model: nobody/knows\n",
         r":5: 'proposer_model': unknown model 'nobody/knows'"),
        (GOOD.replace("agent_alpha", "agent_nobody"), r":1: 'agent': unknown agent"),
        (GOOD.replace("weather_report", "nope"), r":2: 'evaluator': unknown evaluator 'nope'"),
        (GOOD.replace("inputs: [a, b, c, d, e, f, g, h]", "file: missing.jsonl"),
         r":4: 'dataset\.file': no dataset .*missing\.jsonl"),
        (GOOD + "knobs: {tools: [teleport]}\n", r":5: 'knobs\.tools': unknown tool 'teleport'"),
        (GOOD + "knobs: {temperature: [1.5, 0.2]}\n", r"'knobs\.temperature': a temperature"),
        (GOOD + "propagation: {every: 0}\n",
         r":5: 'propagation\.every': Input should be greater than or equal to 1"),
        (GOOD + "propagation: sometimes\n", r":5: 'propagation': Input should be 'end'"),
        (GOOD.replace("[a, b, c, d, e, f, g, h]", str([f"t{n}" for n in range(80)]))
         + "propagation: {every: 2, siblings: 8}\nbudget: {minibatch: 40, max_arms: 9999}\n",
         r":5: 'propagation\.siblings': 8 siblings on a minibatch of 40 make 320 arms that run"),
    ],
)  # fmt: skip
def test_a_bad_learn_file_is_one_located_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as refused:
        load_learn(path, CATALOG)
    assert str(refused.value).startswith(str(path)) and "\n" not in str(refused.value)


def test_a_test_task_never_shares_a_part_with_train_or_validation(tmp_path: Path) -> None:
    learned = load_learn(write(tmp_path, GOOD.replace("h]", "h, a, b]")), CATALOG)
    parts = learned.tasks
    assert not set(parts.test) & (set(parts.train) | set(parts.validation))
    assert len(parts.train + parts.validation + parts.test) == 8  # repeated tasks once


def test_the_curve_starts_at_the_baseline_and_keeps_the_best_validation_so_far() -> None:
    from p2engine.contract.learning import Generation, LearnResult
    from p2engine.contract.rollouts import Estimate
    from p2engine.runtime.learning_curve import curve

    def e(mean: float) -> Estimate:
        return Estimate(mean=mean, n=4, method="t")

    result = LearnResult(
        learn_id="learn-x", name="x", baseline="b", best="c1", candidates=[],
        generations=[
            Generation(number=1, parent="b", train=e(0.2), proposal="c1", validation=e(0.8)),
            Generation(number=2, parent="c1", train=e(0.9), failed="changes nothing"),
            Generation(number=3, parent="c1", train=e(0.9), proposal="c2", validation=e(0.7)),
        ],
        pareto=["c1"], test=None, improved=False, verdict="-", usd=0, tokens=0, arms=0,
        baseline_validation=e(0.3),
    )  # fmt: skip
    lines = {name: [(n, x.mean) for n, x in points] for name, points in curve(result).items()}
    assert lines["train"] == [(1, 0.2), (2, 0.9), (3, 0.9)]
    assert lines["validation"] == [(0, 0.3), (1, 0.8), (3, 0.7)]
    assert lines["best validation"] == [(0, 0.3), (1, 0.8), (2, 0.8), (3, 0.8)]


def comparison(ci_low: float | None, p_value: float | None) -> HeldOutComparison:
    e = Estimate(mean=0.5, n=10, method="t")
    return HeldOutComparison(
        baseline=e, best=e, difference=0.1, ci_low=ci_low, ci_high=0.2, p_value=p_value,
        effect_size=None, pairs=10, rollout="learn-x/test",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        (None, False),  # no candidate beat the baseline on validation
        (comparison(0.05, 0.01), True),
        (comparison(0.0, 0.01), False),  # an interval that touches 0
        (comparison(-0.1, 0.01), False),
        (comparison(0.05, 0.05), False),  # p at the level is not under it
        (comparison(None, 0.01), False),  # one pair: no interval
        (comparison(0.05, None), False),  # all pairs equal: no test
    ],
)
def test_an_improvement_needs_an_interval_above_zero_and_p_under_the_level(
    test: HeldOutComparison | None, expected: bool
) -> None:
    assert improved(test) is expected
    assert verdict(test).startswith("improved" if expected else "no significant improvement")
