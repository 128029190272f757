"""CompareWorkflow: one pairwise comparison of two answers to the same question.

A workflow, not a bare activity call, so that which answer the judge sees first is drawn
with `workflow.random()`: fixed in the history (a replay shows the same order), and even
across many comparisons, so a judge's preference for a position averages out. Rollouts
start it as a child for each pair they compare; `p2e eval compare` starts it on its own.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from p2engine.contract.evals import PairInput, PairOutcome, PairRequest
    from p2engine.contract.names import COMPARE, COMPARE_WORKFLOW
    from p2engine.workflows.details import compare_details
    from p2engine.workflows.failures import root_cause
    from p2engine.workflows.options import EVAL_ACTIVITY


@workflow.defn(name=COMPARE_WORKFLOW)
class CompareWorkflow:
    @workflow.run
    async def run(self, inp: PairInput) -> PairOutcome:
        swapped = workflow.random().random() < 0.5
        request = PairRequest(**inp.model_dump(), swapped=swapped)
        workflow.set_current_details(compare_details(inp, swapped, None))
        try:
            outcome: PairOutcome = await workflow.execute_activity(
                COMPARE,
                request,
                result_type=PairOutcome,
                summary=f"{inp.evaluator_id}: {inp.a.conversation_id} vs {inp.b.conversation_id}",
                **EVAL_ACTIVITY,
            )
        except ActivityError as err:
            outcome = PairOutcome(
                evaluator_id=inp.evaluator_id,
                version="?",
                swapped=swapped,
                error=f"comparison failed: {root_cause(err)}",
            )
        workflow.set_current_details(compare_details(inp, swapped, outcome))
        return outcome
