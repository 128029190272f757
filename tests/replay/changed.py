"""A deliberately changed ConversationWorkflow: it runs the tool before the model, unlike
every recorded run, so replaying a recorded history with it must fail."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from p2engine.contract.models import ConversationInput, ConversationResult
from p2engine.contract.names import RUN_TOOL


@workflow.defn(name="ConversationWorkflow", sandboxed=False)
class CallsTheToolFirst:
    @workflow.run
    async def run(self, inp: ConversationInput) -> ConversationResult:
        await workflow.execute_activity(RUN_TOOL, "{}", start_to_close_timeout=timedelta(seconds=5))
        raise ApplicationError("unreachable in replay")
