"""ActiveBranchWorkflow: which branch of a conversation `p2e chat -c` continues.

A small durable record of its own, because a closed conversation's memo can no longer
change: one workflow per conversation that has been rewound, idle between checkouts. Each
`checkout` is an update, so two at once are taken one after the other and the last one
names the active branch; the memo carries it, so a client reads it with no worker running.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from p2engine.contract.errors import refuse
    from p2engine.contract.models import ActiveBranch
    from p2engine.contract.names import ACTIVE_BRANCH_MEMO, ACTIVE_BRANCH_WORKFLOW
    from p2engine.workflows.details import active_branch_details

# Checkouts one run takes before it continues as new, so its history stays short.
CHECKOUTS_PER_RUN = 500


@workflow.defn(name=ACTIVE_BRANCH_WORKFLOW)
class ActiveBranchWorkflow:
    @workflow.init
    def __init__(self, record: ActiveBranch) -> None:
        self.record = record
        self.checkouts = 0

    @workflow.run
    async def run(self, record: ActiveBranch) -> None:
        self._publish()
        await workflow.wait_condition(
            lambda: self.checkouts >= CHECKOUTS_PER_RUN and workflow.all_handlers_finished()
        )
        workflow.continue_as_new(self.record)

    @workflow.update
    def checkout(self, branch_id: str) -> ActiveBranch:
        """Make `branch_id` (the conversation itself, or one of its branches) the active one."""
        self.record = self.record.model_copy(update={"active": branch_id})
        self.checkouts += 1
        workflow.upsert_memo({ACTIVE_BRANCH_MEMO: branch_id})
        self._publish()
        return self.record

    def _publish(self) -> None:
        workflow.set_current_details(active_branch_details(self.record, self.checkouts))

    @checkout.validator
    def _check_checkout(self, branch_id: str) -> None:
        refuse(None if branch_id.strip() else "a branch id is needed")
