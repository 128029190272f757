"""RolloutWorkflow: a rollout's arms, each a child ConversationWorkflow, run through a
sliding window of `concurrency`, then settled against the ledger and compared.

The arms are made from their index (workflows/expansion.py), so every replay starts the
same ones under the same ids (`<rollout>/<team>/<variant>/r<n>`): a worker that dies
mid-rollout leaves nothing to start twice. A run starts at most `arms_per_run` arms (fewer
if Temporal suggests continuing as new first: long conversations make large results), lets
them finish, stores their records and continues as new, so its history and its worker's
memory stay the same size however many arms there are. Cancelling the rollout cancels the
running arms; every arm ends up with a record, failed and cancelled ones too.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import p2engine.workflows.arms as arms  # by full name: passed through (conversation.py)
    import p2engine.workflows.tracing as tracing
    from p2engine.contract.models import ConversationResult
    from p2engine.contract.names import (
        LEDGER_SNAPSHOT,
        ROLLOUT_MEMO,
        ROLLOUT_WORKFLOW,
        SETTLE_ROLLOUT,
        STORE_ARMS,
    )
    from p2engine.contract.rollouts import (
        Arm,
        ArmBatch,
        ArmRecord,
        ArmStatus,
        Phase,
        RolloutInput,
        RolloutMemo,
        RolloutProgress,
        RolloutResult,
        RolloutState,
        Settled,
        SettleInput,
    )
    from p2engine.ledger.models import LedgerSnapshot
    from p2engine.workflows.conversation import ConversationWorkflow
    from p2engine.workflows.details import conversation_details
    from p2engine.workflows.failures import root_cause
    from p2engine.workflows.options import LEDGER_ACTIVITY, SETTLE_ACTIVITY, STORE_RECORDS_ACTIVITY


@workflow.defn(name=ROLLOUT_WORKFLOW)
class RolloutWorkflow:
    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        self.inp = inp
        self.s = inp.resume or RolloutState()
        self.plan = arms.arm_plan(inp)
        if not self.s.tallies:
            each = self.plan.total // len(self.plan.variants)
            self.s.tallies = arms.empty_tallies(self.plan.variants, each)
        self.running: dict[int, asyncio.Task[ArmRecord]] = {}
        self.phase: Phase = "running"

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutResult:
        with tracing.rollout_span(inp.name, self.plan.total):
            return await self._run(inp)

    async def _run(self, inp: RolloutInput) -> RolloutResult:
        if self.s.started_at is None:
            self.s.started_at = workflow.now()
            self._memo()
            self.s.before = await self._balances("ledger before") or {}
        try:
            await self._run_arms()
        except asyncio.CancelledError:
            await self._cancel()
            raise
        return await self._settle()

    @workflow.query
    def progress(self) -> RolloutProgress:
        return RolloutProgress(
            rollout_id=workflow.info().workflow_id,
            name=self.inp.name,
            phase=self.phase,
            total=self.plan.total,
            started=self.s.next_arm,
            running=len(self.running),
            variants=self.s.tallies,
            runs=self.s.runs,
        )

    async def _run_arms(self) -> None:
        started = 0
        while True:
            while (
                len(self.running) < self.inp.spec.concurrency
                and self.s.next_arm < self.plan.total
                and started < self.inp.arms_per_run
                and not workflow.info().is_continue_as_new_suggested()
            ):
                if arms.budget_spent(self.inp.spec, self.s.spent_usd):
                    self._skip_the_rest()
                    break
                index = self.s.next_arm
                self.s.next_arm += 1
                started += 1
                self.running[index] = asyncio.create_task(self._run_arm(self.plan.arm(index)))
            self._publish()
            if not self.running:
                break
            await workflow.wait(list(self.running.values()), return_when=asyncio.FIRST_COMPLETED)
            for index in sorted(i for i, task in self.running.items() if task.done()):
                self._keep(self.running.pop(index).result())
        if self.s.next_arm < self.plan.total:
            await self._store()
            self.s.runs += 1
            workflow.continue_as_new(self.inp.model_copy(update={"resume": self.s}))

    async def _run_arm(self, arm: Arm) -> ArmRecord:
        rollout_id = workflow.info().workflow_id
        inp = arms.arm_input(self.inp, arm)
        try:
            handle = await workflow.start_child_workflow(
                ConversationWorkflow.run,
                inp,
                id=arms.arm_id(rollout_id, arm),
                search_attributes=arms.arm_search_attributes(rollout_id, arm),
                static_summary=arms.arm_summary(arm),
                static_details=conversation_details(inp),
                execution_timeout=arms.arm_timeout(self.inp.spec, arm),
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            )
            # From the child's start, so the latency compared is the arm's own, not the
            # time its start waited in a busy server's queue.
            begun = workflow.now()
            result: ConversationResult = await handle
        except asyncio.CancelledError:
            return arms.unfinished_record(rollout_id, arm, "cancelled", "the rollout was cancelled")
        except WorkflowAlreadyStartedError:
            return arms.unfinished_record(
                rollout_id, arm, "failed", "a conversation with the arm's id exists already"
            )
        except ChildWorkflowError as err:
            cancelled = (
                isinstance(err.cause, asyncio.CancelledError) or "cancel" in str(err.cause).lower()
            )
            status: ArmStatus = "cancelled" if cancelled else "failed"
            return arms.unfinished_record(rollout_id, arm, status, root_cause(err))
        latency = (workflow.now() - begun).total_seconds()
        return arms.finished_record(rollout_id, self.inp.spec, arm, result, latency)

    def _keep(self, record: ArmRecord) -> None:
        self.s.records.append(record)
        self.s.spent_usd += record.cost_usd
        arms.tally(self.s.tallies, record)

    def _skip_the_rest(self) -> None:
        """The budget is spent: every arm not started yet is recorded as skipped."""
        why = f"skipped: the rollout's budget (${self.inp.spec.budget}) was spent"
        rollout_id = workflow.info().workflow_id
        for index in range(self.s.next_arm, self.plan.total):
            self._keep(arms.unfinished_record(rollout_id, self.plan.arm(index), "skipped", why))
        self.s.next_arm = self.plan.total

    async def _cancel(self) -> None:
        """Cancel the running arms and wait for them to end, record the arms never started
        as cancelled, and store everything, so the rollout's records stay whole."""
        self.phase = "cancelled"
        for task in self.running.values():
            task.cancel()
        for index in sorted(self.running):
            self._keep(await self.running[index])
        self.running.clear()
        rollout_id = workflow.info().workflow_id
        for index in range(self.s.next_arm, self.plan.total):
            arm = self.plan.arm(index)
            self._keep(arms.unfinished_record(rollout_id, arm, "cancelled", "never started"))
        self.s.next_arm = self.plan.total
        self._publish()
        await self._store()
        self._memo(self.s.stored)

    async def _settle(self) -> RolloutResult:
        self.phase = "settling"
        self._publish()
        await self._store()
        after = await self._balances("ledger after")
        assert self.s.started_at is not None
        settled: Settled = await workflow.execute_activity(
            SETTLE_ROLLOUT,
            SettleInput(
                rollout_id=workflow.info().workflow_id,
                spec=self.inp.spec,
                stored=self.s.stored,
                since=self.s.started_at,
                no_ledger=self.inp.ledger,
            ),
            result_type=Settled,
            summary=f"settle {self.plan.total} arms: ledger flows and comparison",
            **SETTLE_ACTIVITY,
        )
        self.phase = "done"
        self._publish()
        self._memo([settled.records_ref])
        return RolloutResult(
            rollout_id=workflow.info().workflow_id,
            name=self.inp.name,
            phase=self.phase,
            total=self.plan.total,
            records_ref=settled.records_ref,
            comparison=settled.comparison,
            wallets=arms.wallet_changes(self.s.before, after) if after is not None else [],
        )

    async def _store(self) -> None:
        if not self.s.records:
            return
        ref: str = await workflow.execute_local_activity(
            STORE_ARMS,
            ArmBatch(records=self.s.records),
            result_type=str,
            summary=f"store {len(self.s.records)} arm records",
            **STORE_RECORDS_ACTIVITY,
        )
        self.s.stored.append(ref)
        self.s.records = []

    async def _balances(self, summary: str) -> dict[str, Decimal] | None:
        """Every wallet's balance; None where no ledger can be read (none was created, or
        it broke since the start): the rollout runs all the same, without money figures."""
        if self.inp.ledger is not None:
            return None
        try:
            snapshot: LedgerSnapshot = await workflow.execute_activity(
                LEDGER_SNAPSHOT, result_type=LedgerSnapshot, summary=summary, **LEDGER_ACTIVITY
            )
        except ActivityError:
            return None
        return {w.agent: w.balance for w in snapshot.wallets}

    def _memo(self, records: list[str] | None = None) -> None:
        memo = RolloutMemo(
            name=self.inp.name, total=self.plan.total, phase=self.phase, records=records or []
        )
        workflow.upsert_memo({ROLLOUT_MEMO: memo.model_dump(mode="json")})

    def _publish(self) -> None:
        workflow.set_current_details(
            arms.rollout_details(self.phase, self.plan.total, self.s.tallies, len(self.running))
        )
