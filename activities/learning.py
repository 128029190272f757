"""The learning loop's side effects: a scoring rollout's records read from the store and
digested into scores per config and task (with the weakest tasks' replies and the judge's
reasons), and a proposal: a proposer model asked for a better instruction.

The proposer's prompt and the reading of its reply are GEPA's (`InstructionProposalSignature`
of the `gepa` package): the current instruction, then each weak example's task, response
and feedback as markdown, and the new instruction taken from the ``` block of the reply.
What is ours is the orchestration around it: the examples come from real conversations'
stored evaluations, and a reply that makes no usable instruction is a failed proposal with
its reason, not a failed run.
"""

from __future__ import annotations

import random
from collections import defaultdict

from gepa.strategies.instruction_proposal import InstructionProposalSignature
from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.activities.llm import complete_text
from p2engine.contract.agent_config import ConfigPatch
from p2engine.contract.evals import Evaluation
from p2engine.contract.learning import (
    Candidate,
    DigestInput,
    Feedback,
    Proposal,
    ProposeInput,
    Scored,
)
from p2engine.contract.names import LEARN_DIGEST, LEARN_PROPOSE
from p2engine.contract.rollouts import ArmRecord, parse_records
from p2engine.evals.comparison import t_interval
from p2engine.evals.variants import estimate_of, within_range
from p2engine.store.base import ArtifactNotFound, ArtifactStore


async def stored(store: ArtifactStore, candidate: Candidate) -> Candidate:
    """`candidate` with the ref of its record, written to the store (lineage included)."""
    return candidate.model_copy(update={"record": await store.put_text(candidate.as_stored())})


class LearnActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name=LEARN_DIGEST)
    async def digest(self, inp: DigestInput) -> Scored:
        records = parse_records(await self.store.get_bytes(inp.records_ref))
        by_config: dict[str, list[ArmRecord]] = defaultdict(list)
        for record in records:
            by_config[record.variant].append(record)
        per_task: dict[str, dict[str, float]] = {}
        estimates = {}
        weakest: dict[str, list[Feedback]] = {}
        for config, arms in by_config.items():
            scores: dict[str, list[float]] = defaultdict(list)
            for arm in arms:  # an arm that never scored counts as 0: it did not do the task
                scores[inp.tasks[arm.case]].append(arm.score or 0.0)
            per_task[config] = {task: sum(v) / len(v) for task, v in scores.items()}
            values = [arm.score or 0.0 for arm in arms]
            estimates[config] = within_range(estimate_of(t_interval(values)), "score")
            worst = sorted(arms, key=lambda a: (a.score or 0.0, a.case, a.repeat))[: inp.weakest]
            weakest[config] = [await self._feedback(arm, inp.tasks) for arm in worst]
        return Scored(
            per_task=per_task,
            estimates=estimates,
            usd=sum(r.cost_usd for r in records),
            tokens=sum(r.tokens for r in records),
            weakest=weakest,
        )

    async def _feedback(self, arm: ArmRecord, tasks: list[str]) -> Feedback:
        reply = ""
        if arm.reply_ref is not None:
            try:
                reply = (await self.store.get_node(arm.reply_ref)).text or ""
            except ArtifactNotFound:
                reply = "(the reply is not in the store)"
        reasons = []
        for ref in arm.eval_refs:
            record = Evaluation.model_validate_json(await self.store.get_text(ref))
            if record.score is not None and record.score.rationale:
                reasons.append(record.score.rationale)
            elif record.error:
                reasons.append(f"not scored: {record.error}")
        if arm.status != "done":
            reasons.append(f"the conversation ended {arm.status}: {arm.error or arm.reason}")
        return Feedback(
            task=tasks[arm.case], reply=reply, score=arm.score, reasons="; ".join(reasons)
        )

    @activity.defn(name=LEARN_PROPOSE)
    async def propose(self, inp: ProposeInput) -> Proposal:
        """A new candidate from the parent: GEPA's reflective mutation of its instruction
        when the knobs allow, and the other knobs drawn by the seed. A reply with no usable
        instruction is a failed proposal; a transient provider error is retried."""
        parent = inp.parent.config
        patch: dict[str, object] = {}
        usd, tokens, why = 0.0, 0, []
        if inp.knobs.system_prompt:
            prompt = InstructionProposalSignature.prompt_renderer(
                {
                    "current_instruction_doc": parent.system_prompt or "",
                    "dataset_with_feedback": [
                        {"Task": f.task, "Response": f.reply, "Feedback": f.reasons or "none"}
                        for f in inp.feedback
                    ],
                }
            )
            assert isinstance(prompt, str)  # text only: no images in these examples
            try:
                reply, usage = await complete_text(inp.model, [{"role": "user", "content": prompt}])
            except ApplicationError as exc:
                if not exc.non_retryable:
                    raise
                return Proposal(failed=f"the proposer failed: {exc.message}")
            usd, tokens = usage.cost_usd, usage.total_tokens
            instruction = InstructionProposalSignature.output_extractor(reply)["new_instruction"]
            if "```" not in reply or not instruction.strip():
                return Proposal(
                    failed="the proposer's reply holds no instruction in a ``` block",
                    usage_usd=usd,
                    tokens=tokens,
                )
            patch["system_prompt"] = instruction.strip()
            why.append("the proposer rewrote the instruction from the judge's reasons")
        rng = random.Random(f"{inp.seed}/knobs/{inp.generation}")
        if inp.knobs.models:
            patch["model"] = rng.choice(inp.knobs.models)
        if inp.knobs.temperature is not None:
            low, high = inp.knobs.temperature
            patch["temperature"] = round(rng.uniform(low, high), 2)
        if inp.knobs.tools:
            allowed = sorted(inp.knobs.tools)
            patch["tools"] = tuple(sorted(rng.sample(allowed, rng.randint(1, len(allowed)))))
        config = ConfigPatch.model_validate(patch).apply(parent)
        changes = ConfigPatch.model_validate(patch).changes(parent)
        if not changes:
            return Proposal(
                failed="the proposal changes nothing of its parent", usage_usd=usd, tokens=tokens
            )
        candidate = Candidate(
            config=config,
            parent=parent.id,
            generation=inp.generation,
            changes=changes,
            why="; ".join(why) or "knobs drawn by the seed",
        )
        return Proposal(candidate=await stored(self.store, candidate), usage_usd=usd, tokens=tokens)
