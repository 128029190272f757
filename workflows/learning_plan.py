"""The learning loop's decisions, pure so the workflow and the client that checks a learn
file decide alike, and tested without Temporal: the split, the budget by arithmetic, each
generation's minibatch, the rollout that scores a set of configs, and the parent chosen
from the Pareto front of the candidates' validation scores.

The Pareto selection is GEPA's (`gepa.gepa_utils`): the candidates that are best on at
least one validation task, dominated ones removed, one drawn with a chance proportional to
how many tasks it is best on, so a candidate that is best on a few hard tasks is kept
alive beside the one with the best mean. The draw uses a seeded generator, so a replay
draws the same parent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from gepa.gepa_utils import remove_dominated_programs, select_program_candidate_from_pareto_front

from p2engine.contract.agent_config import KNOBS, AgentConfig
from p2engine.contract.errors import ConfigError
from p2engine.contract.learning import (
    EveryN,
    HeldOutComparison,
    LearnSpec,
    SiblingArm,
    Split,
    Tasks,
)
from p2engine.contract.rollouts import RolloutInput, RolloutSpec, Team, TeamEval, Variant
from p2engine.workflows.arms import arm_id, arm_plan

TEAM = "learn"
SIGNIFICANCE = 0.05
# Arms of a propagating generation run at once (they wait for each other at barriers), and
# the run reads each of them at every poll: a bound on both.
MAX_SIDE_BY_SIDE = 256


class LearnPlanError(ConfigError):
    """A learn file that validates but cannot run: `where` is its dotted path."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"'{where}': {problem}")
        self.where = where


def split_tasks(tasks: Sequence[str], split: Split, seed: int) -> Tasks:
    """Each distinct task in one part, drawn by `seed`; a part left empty is refused."""
    distinct = list(dict.fromkeys(tasks))
    if not distinct:
        raise LearnPlanError("dataset", "has no tasks")
    random.Random(seed).shuffle(distinct)
    n = len(distinct)
    train = round(n * split.train)
    validation = round(n * split.validation)
    parts = Tasks(
        train=distinct[:train],
        validation=distinct[train : train + validation],
        test=distinct[train + validation :],
    )
    for name in ("train", "validation", "test"):
        if not getattr(parts, name):
            raise LearnPlanError(
                "dataset.split", f"{n} tasks leave the {name} part empty; add tasks"
            )
    return parts


def arms_needed(spec: LearnSpec, tasks: Tasks) -> int:
    """Every arm the run can start, by arithmetic: the baseline on validation, each
    generation's parent (and, propagating every N steps, its siblings) on a minibatch and
    its candidate on validation, and the best and the baseline on the test part,
    `test_repeats` times."""
    per_generation = train_arms(spec, tasks) + len(tasks.validation)
    test = 2 * len(tasks.test) * spec.test_repeats
    return len(tasks.validation) + spec.budget.generations * per_generation + test


def train_arms(spec: LearnSpec, tasks: Tasks) -> int:
    """The most arms a generation's train rollout runs."""
    side_by_side = spec.propagation.siblings if isinstance(spec.propagation, EveryN) else 1
    return side_by_side * min(spec.budget.minibatch, len(tasks.train))


def check_budget(spec: LearnSpec, tasks: Tasks) -> int:
    needed = arms_needed(spec, tasks)
    if needed > spec.budget.max_arms:
        raise LearnPlanError(
            "budget.max_arms",
            f"{spec.budget.generations} generations need {needed} arms, more than "
            f"{spec.budget.max_arms}; raise it or run fewer generations",
        )
    if isinstance(spec.propagation, EveryN) and train_arms(spec, tasks) > MAX_SIDE_BY_SIDE:
        raise LearnPlanError(
            "propagation.siblings",
            f"{spec.propagation.siblings} siblings on a minibatch of {spec.budget.minibatch} make "
            f"{train_arms(spec, tasks)} arms that run at once, more than {MAX_SIDE_BY_SIDE}; "
            "run fewer side by side or a smaller minibatch",
        )
    return needed


def siblings(
    parent: str, validation: Mapping[str, Mapping[str, float]], propagation: EveryN | str
) -> list[str]:
    """The configs a generation's train rollout runs: the parent, then, propagating every
    N steps, the next best candidates by validation mean (the earliest of a tie)."""
    if not isinstance(propagation, EveryN):
        return [parent]
    others = sorted((i for i in validation if i != parent), key=lambda i: -_mean(validation[i]))
    return [parent, *others[: propagation.siblings - 1]]


def sibling_arms(
    rollout_id: str, inp: RolloutInput, configs: Mapping[str, AgentConfig]
) -> list[SiblingArm]:
    """The arms of a propagating train rollout (`configs` by id, its variants' ids), each
    with the config it starts with."""
    plan = arm_plan(inp)
    arms = [plan.arm(index) for index in range(plan.total)]
    return [
        SiblingArm(workflow_id=arm_id(rollout_id, arm), config=configs[arm.variant]) for arm in arms
    ]


def minibatch(train: Sequence[str], size: int, seed: int, generation: int) -> list[str]:
    """The train tasks a generation's parent runs on: a seeded draw, another each generation."""
    chosen = list(train)
    random.Random(f"{seed}/{generation}").shuffle(chosen)
    return chosen[: min(size, len(chosen))]


def variant_of(config: AgentConfig) -> Variant:
    """A rollout variant that runs `config` on its agent (its id is the config's)."""
    knobs = config.model_dump(include=set(KNOBS), exclude_none=True)
    knobs["tools"] = list(config.tools)
    return Variant(id=config.id, agent_id=config.agent_id, **knobs)


def scoring_rollout(
    configs: Sequence[AgentConfig],
    spec: LearnSpec,
    repeats: int = 1,
    concurrency: int | None = None,
) -> RolloutSpec:
    """The rollout that runs every config on the same tasks (its inputs), scored by the
    learn file's evaluator; the first config is the baseline its comparison is against.
    Arms that wait for each other at barriers run all at once (`concurrency`)."""
    team = Team(
        base=Variant(agent_id=spec.agent),
        variants=[variant_of(c) for c in dict.fromkeys(configs)],
        eval=TeamEval(evaluator_id=spec.evaluator),
    )
    return RolloutSpec(
        repeats=repeats,
        concurrency=concurrency or spec.concurrency,
        seed=spec.seed,
        baseline=f"{TEAM}/{configs[0].id}",
        teams={TEAM: team},
        max_arms=spec.budget.max_arms,
    )


def pareto_front(validation: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The candidates (ids, in the order given) that are best on at least one validation
    task and not dominated by another."""
    ids = list(validation)
    fronts = _fronts(validation, ids)
    means = [_mean(validation[i]) for i in ids]
    kept = remove_dominated_programs(fronts, scores=dict(enumerate(means)))  # type: ignore[no-untyped-call]
    alive = {index for front in kept.values() for index in front}
    return [ids[index] for index in sorted(alive)]


def choose_parent(validation: Mapping[str, Mapping[str, float]], seed: int, generation: int) -> str:
    """The parent of the next candidate: GEPA's draw from the Pareto front."""
    ids = list(validation)
    fronts = _fronts(validation, ids)
    means = [_mean(validation[i]) for i in ids]
    rng = random.Random(f"{seed}/parent/{generation}")
    return ids[select_program_candidate_from_pareto_front(fronts, means, rng)]


def best(validation: Mapping[str, Mapping[str, float]]) -> str:
    """The candidate with the highest mean validation score; the earliest of a tie."""
    return max(validation, key=lambda i: _mean(validation[i]))


def improved(test: HeldOutComparison | None) -> bool:
    """Whether the held-out comparison shows a real improvement: the difference's 95%
    interval above 0 and its p-value under 0.05. No test (no candidate beat the baseline on
    validation), no interval (one pair) or no p-value is no improvement."""
    if test is None or test.ci_low is None or test.p_value is None:
        return False
    return test.ci_low > 0 and test.p_value < SIGNIFICANCE


def verdict(test: HeldOutComparison | None) -> str:
    """The result in one plain sentence."""
    if test is None:
        return "no significant improvement: no candidate beat the baseline on validation"
    if improved(test):
        return (
            f"improved: {test.difference:+.3f} on the held-out tasks "
            f"(95% CI [{test.ci_low:.3f}, {test.ci_high:.3f}], p={test.p_value:.3g})"
        )
    return "no significant improvement on the held-out tasks"


def _fronts(
    validation: Mapping[str, Mapping[str, float]], ids: Sequence[str]
) -> dict[str, set[int]]:
    tasks = sorted({task for scores in validation.values() for task in scores})
    fronts: dict[str, set[int]] = {}
    for task in tasks:
        scored = {n: validation[i][task] for n, i in enumerate(ids) if task in validation[i]}
        if scored:
            top = max(scored.values())
            fronts[task] = {n for n, value in scored.items() if value == top}
    return fronts


def _mean(scores: Mapping[str, float]) -> float:
    return sum(scores.values()) / len(scores) if scores else 0.0
