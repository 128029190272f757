"""LearningWorkflow: improves an agent's config from its scores, as rollouts it can be
audited by.

The baseline is scored on the validation tasks first. Each generation then draws a parent
from the Pareto front of the candidates' validation scores (workflows/learning_plan.py),
runs it on a minibatch of train tasks, asks the proposer for a better config from its
weakest tasks and the judge's reasons (activities/learning.py), and scores the new
candidate on the validation tasks. Every scoring is a child RolloutWorkflow, so every
number is a rollout's, with its arms, records and comparison. At the end the best
candidate and the baseline run on the held-out test tasks, `test_repeats` times, and the
rollout's paired comparison says whether the improvement is real.

With `propagation: end`, the best strategy of a generation is the parent the next one
starts from: the Pareto draw favours it in proportion to the tasks it is best on. With
`propagation: {every: N}`, a generation's train rollout also runs the parent's siblings
(the next best candidates) beside it, and every N model steps the best of the arms so far
is pushed to the weaker ones as an override they record (activities/propagation.py).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import p2engine.workflows.learning_plan as plan  # by full name: passed through
    from p2engine.contract.agent_config import AgentConfig
    from p2engine.contract.learning import (
        LEARN_WORKFLOW,
        DigestInput,
        EveryN,
        Generation,
        HeldOutComparison,
        LearnInput,
        LearnResult,
        LearnState,
        PropagateInput,
        Proposal,
        ProposeInput,
        Push,
        Scored,
        SiblingArm,
        baseline_candidate,
    )
    from p2engine.contract.models import Propagation
    from p2engine.contract.names import LEARN_DIGEST, LEARN_PROPAGATE, LEARN_PROPOSE
    from p2engine.contract.rollouts import RolloutInput, RolloutResult
    from p2engine.workflows.options import LLM_ACTIVITY, PROPAGATE_ACTIVITY, SETTLE_ACTIVITY
    from p2engine.workflows.rollout import RolloutWorkflow


@workflow.defn(name=LEARN_WORKFLOW)
class LearningWorkflow:
    @workflow.init
    def __init__(self, inp: LearnInput) -> None:
        self.inp = inp
        self.s = inp.resume or LearnState()
        self.phase = "running"

    @workflow.query
    def progress(self) -> LearnState:
        return self.s

    @workflow.run
    async def run(self, inp: LearnInput) -> LearnResult:
        spec, tasks = inp.spec, inp.tasks
        baseline = inp.baseline
        if not self.s.candidates:
            self.s.candidates = [baseline_candidate(baseline, inp.baseline_record)]
            scored, _ = await self._score([baseline], tasks.validation, "g0-validation")
            self.s.validation[baseline.id] = scored.per_task[baseline.id]
            self.s.baseline_validation = scored.estimates[baseline.id]
        for number in range(len(self.s.generations) + 1, spec.budget.generations + 1):
            if spec.budget.max_usd is not None and self.s.usd >= spec.budget.max_usd:
                break
            self.s.generations.append(await self._generation(number))
        best_id = plan.best(self.s.validation)
        test = None if best_id == baseline.id else await self._test(self._config(best_id))
        improved = plan.improved(test)
        return LearnResult(
            learn_id=workflow.info().workflow_id,
            name=inp.name,
            baseline=baseline.id,
            best=best_id,
            candidates=self.s.candidates,
            generations=self.s.generations,
            pareto=plan.pareto_front(self.s.validation),
            baseline_validation=self.s.baseline_validation,
            test=test,
            improved=improved,
            verdict=plan.verdict(test),
            usd=self.s.usd,
            tokens=self.s.tokens,
            arms=self.s.arms,
        )

    async def _generation(self, number: int) -> Generation:
        spec = self.inp.spec
        parent_id = plan.choose_parent(self.s.validation, spec.seed, number)
        parent = next(c for c in self.s.candidates if c.config.id == parent_id)
        batch = plan.minibatch(self.inp.tasks.train, spec.budget.minibatch, spec.seed, number)
        side_by_side = [
            self._config(i) for i in plan.siblings(parent_id, self.s.validation, spec.propagation)
        ]
        pushes: list[Push] = []
        train, trained = await self._score(side_by_side, batch, f"g{number}-train", pushes=pushes)
        generation = Generation(
            number=number,
            parent=parent_id,
            train=train.estimates[parent_id],
            rollouts=[trained.rollout_id],
            siblings=[c.id for c in side_by_side[1:]],
            pushes=pushes,
        )
        proposal: Proposal = await workflow.execute_activity(
            LEARN_PROPOSE,
            ProposeInput(
                parent=parent,
                feedback=train.weakest.get(parent_id, []),
                model=spec.proposer_model,
                knobs=spec.knobs,
                generation=number,
                seed=spec.seed,
            ),
            result_type=Proposal,
            summary=f"generation {number}: propose from {parent_id}",
            **LLM_ACTIVITY,
        )
        self.s.usd += proposal.usage_usd
        self.s.tokens += proposal.tokens
        candidate = proposal.candidate
        if candidate is None:
            generation.failed = proposal.failed
        elif candidate.config.id in self.s.validation:
            generation.failed = f"the proposal is {candidate.config.id}, a config tried already"
        else:
            validation, validated = await self._score(
                [candidate.config], self.inp.tasks.validation, f"g{number}-validation"
            )
            self.s.candidates.append(candidate)
            self.s.validation[candidate.config.id] = validation.per_task[candidate.config.id]
            generation.proposal = candidate.config.id
            generation.validation = validation.estimates[candidate.config.id]
            generation.rollouts.append(validated.rollout_id)
        return generation

    async def _score(
        self,
        configs: list[AgentConfig],
        tasks: list[str],
        label: str,
        repeats: int = 1,
        pushes: list[Push] | None = None,
    ) -> tuple[Scored, RolloutResult]:
        """Run `configs` on `tasks` as a child rollout (the first config its baseline) and
        digest its records. Given `pushes` and several configs under `propagation: {every:
        N}`, its arms propagate the best config as they run; the pushes are added there."""
        inp = self.inp
        arms = len(dict.fromkeys(configs)) * len(tasks) * repeats
        self.s.arms += arms
        every = inp.spec.propagation if pushes is not None and len(configs) > 1 else None
        propagating = every if isinstance(every, EveryN) else None
        rollout_id = f"{workflow.info().workflow_id}/{label}"
        rollout = RolloutInput(
            name=f"{inp.name}/{label}",
            spec=plan.scoring_rollout(
                configs, inp.spec, repeats, concurrency=arms if propagating else None
            ),
            inputs=tasks,
            catalog=inp.catalog,
            revision=inp.revision,
            store_id=inp.store_id,
            ledger=inp.ledger,
            propagation=Propagation(every=propagating.every, metric=inp.spec.evaluator)
            if propagating
            else None,
        )
        run = workflow.execute_child_workflow(
            RolloutWorkflow.run, rollout, id=rollout_id, static_summary=f"{inp.name}: {label}"
        )
        if propagating is None or pushes is None:
            result: RolloutResult = await run
        else:
            siblings = plan.sibling_arms(rollout_id, rollout, {c.id: c for c in configs})
            result, pushed = await asyncio.gather(run, self._propagate(siblings, label))
            pushes.extend(pushed)
        scored: Scored = await workflow.execute_activity(
            LEARN_DIGEST,
            DigestInput(records_ref=result.records_ref, tasks=tasks),
            result_type=Scored,
            summary=f"{label}: scores per config and task",
            **SETTLE_ACTIVITY,
        )
        self.s.usd += scored.usd
        self.s.tokens += scored.tokens
        return scored, result

    async def _test(self, best: AgentConfig) -> HeldOutComparison:
        """The best candidate against the baseline on the held-out tasks, paired."""
        inp = self.inp
        scored, result = await self._score(
            [inp.baseline, best], inp.tasks.test, "test", inp.spec.test_repeats
        )
        versus = next(v for v in result.comparison.variants if v.variant == best.id).versus
        difference = versus.difference if versus else None
        return HeldOutComparison(
            baseline=scored.estimates[inp.baseline.id],
            best=scored.estimates[best.id],
            difference=difference.mean if difference else 0.0,
            ci_low=difference.low if difference else None,
            ci_high=difference.high if difference else None,
            p_value=versus.p_value if versus else None,
            effect_size=versus.effect_size if versus else None,
            pairs=versus.n if versus else 0,
            rollout=result.rollout_id,
        )

    async def _propagate(self, arms: list[SiblingArm], label: str) -> list[Push]:
        pushed: list[Push] = await workflow.execute_activity(
            LEARN_PROPAGATE,
            PropagateInput(arms=arms),
            result_type=list[Push],
            summary=f"{label}: the best config pushed every N steps",
            **PROPAGATE_ACTIVITY,
        )
        return pushed

    def _config(self, config_id: str) -> AgentConfig:
        return next(c.config for c in self.s.candidates if c.config.id == config_id)
