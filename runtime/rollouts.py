"""Client-side operations on rollouts and their schedules, for the CLI, benchmarks and tests.

`RolloutClient` is the one place that names the rollout workflow's query and memo and
writes its visibility queries. A file is loaded and checked whole (runtime/rollout_files.py)
before anything connects, so a bad file never starts the dev server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow as StartedRun,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from p2engine.agents.scripted import PROVIDER as SCRIPTED_PROVIDER
from p2engine.contract.agent import DEFAULT_MODEL
from p2engine.contract.errors import InvalidInput, P2eError, refuse
from p2engine.contract.ids import name_problem
from p2engine.contract.models import CURRENT_REVISION, preview
from p2engine.contract.names import (
    LEDGER_SNAPSHOT,
    ROLLOUT_MEMO,
    ROLLOUT_WORKFLOW,
    SCHEDULE_FILE_MEMO,
)
from p2engine.contract.rollouts import (
    ArmRecord,
    RolloutInput,
    RolloutMemo,
    RolloutProgress,
    RolloutResult,
    VariantTally,
    parse_records,
)
from p2engine.ledger.models import JournalEntry, LedgerSnapshot
from p2engine.runtime.catalog import load_catalog, stored_catalog
from p2engine.runtime.client import LazyClient
from p2engine.runtime.conversations import check_model, generated_name, query_literal
from p2engine.runtime.rollout_files import RolloutFile, load_rollout
from p2engine.runtime.settings import Settings
from p2engine.store import store_for
from p2engine.workflows import search
from p2engine.workflows.arms import tally
from p2engine.workflows.rollout import RolloutWorkflow

PREFIX = "rollout-"
SCHEDULE_PREFIX = "rollout-schedule-"
OVERLAPS = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate_other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
}

RolloutHandle = WorkflowHandle[RolloutWorkflow, RolloutResult]


class RolloutNotFound(P2eError):
    """No rollout workflow with the given id."""


class ScheduleNotFound(P2eError):
    pass


@dataclass(frozen=True)
class PreparedRollout:
    """A checked file and the input its workflow starts with."""

    file: RolloutFile
    input: RolloutInput


@dataclass(frozen=True)
class RolloutSummary:
    id: str
    name: str
    total: int
    phase: str
    status: WorkflowExecutionStatus | None
    started: datetime
    closed: datetime | None


@dataclass(frozen=True)
class ListedArm:
    """An arm's conversation as visibility lists it."""

    id: str
    variant: str  # team/variant
    agent: str | None


@dataclass(frozen=True)
class LedgerSnapshots:
    """The wallets as a rollout read them when it started and when it settled."""

    before: LedgerSnapshot | None
    after: LedgerSnapshot | None


@dataclass(frozen=True)
class ScheduleSummary:
    """A rollout schedule as `p2e rollout schedule describe` shows it."""

    id: str
    cron: list[str]
    every: list[timedelta]
    overlap: str
    paused: bool
    note: str | None
    runs: int
    skipped: int
    running: list[str]
    recent: list[tuple[datetime, str]]  # (when it was due, the rollout it started)
    upcoming: list[datetime]
    file: str | None = None  # the rollout file it was made from


def schedule_summary(d: ScheduleDescription, file: str | None = None) -> ScheduleSummary:
    spec = d.schedule.spec
    return ScheduleSummary(
        id=d.id,
        cron=list(spec.cron_expressions),
        every=[i.every for i in spec.intervals],
        overlap=d.schedule.policy.overlap.name.lower(),
        paused=d.schedule.state.paused,
        note=d.schedule.state.note,
        runs=d.info.num_actions,
        skipped=d.info.num_actions_skipped_overlap,
        running=[a.workflow_id for a in d.info.running_actions if isinstance(a, StartedRun)],
        recent=[
            (a.scheduled_at, a.action.workflow_id)
            for a in d.info.recent_actions
            if isinstance(a.action, StartedRun)
        ],
        upcoming=list(d.info.next_action_times[:3]),
        file=file,
    )


def _handle(client: Client, workflow_id: str) -> RolloutHandle:
    return client.get_workflow_handle_for(RolloutWorkflow.run, workflow_id)


def rollout_id(name: str) -> str:
    return name if name.startswith(PREFIX) else PREFIX + name


def parse_every(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d`: a schedule's interval."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not (number.isascii() and number.isdigit()) or int(number) == 0:
        raise InvalidInput(
            f"--every takes a number and s, m, h or d (like 30s or 1h), not {text!r}"
        )
    return timedelta(seconds=int(number) * units[unit])


class RolloutClient(LazyClient):
    """Typed operations on rollouts over one Temporal client, connecting on first use."""

    # --- starting -------------------------------------------------------------------------

    def prepare(
        self, path: Path, *, model: str | None = None, repeats: int | None = None
    ) -> PreparedRollout:
        """Load and check `path` against this machine's team; `model` replaces every arm's
        model, `repeats` the file's repeats."""
        catalog = load_catalog(self.settings)
        loaded = load_rollout(path, catalog, repeats=repeats)
        if model is not None:
            check_model(model)
        else:
            for found in dict.fromkeys(v.agent.model for v in loaded.plan.variants):
                if found is not None:
                    check_model(found)
        inp = RolloutInput(
            name=path.stem,
            spec=loaded.spec,
            inputs=loaded.inputs,
            catalog=catalog,
            model=model,
            revision=CURRENT_REVISION,
            rewards=self.settings.rewards,
            continue_as_new_events=self.settings.conversation.continue_as_new_events,
        )
        refuse(budget_problem(loaded, model, self.settings))
        return PreparedRollout(loaded, inp)

    async def start(self, inp: RolloutInput, *, name: str | None = None) -> RolloutHandle:
        if name is not None:
            refuse(name_problem(name.removeprefix(PREFIX), "--id"))
        async with store_for(self.settings) as store:
            store_id = inp.store_id or await store.identity()
            catalog = await stored_catalog(store, inp.catalog, inp.revision)
        routing = self.settings.routing if self.settings.routing.routed else None
        ledger = await self.ledger_problem()
        update = {"ledger": ledger, "store_id": store_id, "routing": routing, "catalog": catalog}
        inp = inp.model_copy(update=update)
        client = await self.temporal()
        workflow_id = rollout_id(name or generated_name(inp.name))
        try:
            return await client.start_workflow(
                RolloutWorkflow.run,
                inp,
                id=workflow_id,
                task_queue=self.settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=_summary(inp),
            )
        except WorkflowAlreadyStartedError:
            raise InvalidInput(
                f"a rollout '{workflow_id}' exists already; pick another --id"
            ) from None

    async def ledger_problem(self) -> str | None:
        """Why the rollout will have no ledger figures (no ledger yet), or None."""
        from p2engine.ledger.errors import LedgerError
        from p2engine.runtime.settings import ledger_for

        try:
            ledger = ledger_for(self.settings)
            try:
                await ledger.metrics()
            finally:
                await ledger.close()
        except LedgerError as exc:
            return str(exc)
        return None

    # --- reading --------------------------------------------------------------------------

    async def handle(self, rollout: str) -> tuple[RolloutHandle, WorkflowExecution]:
        client = await self.temporal()
        for candidate in dict.fromkeys([rollout, rollout_id(rollout)]):
            handle = _handle(client, candidate)
            try:
                description = await handle.describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue
            if description.workflow_type != ROLLOUT_WORKFLOW:
                raise RolloutNotFound(f"'{candidate}' is a {description.workflow_type}, no rollout")
            return handle, description
        raise RolloutNotFound(f"no rollout '{rollout}' (p2e rollout list shows them)")

    async def result(self, rollout: str | RolloutHandle) -> RolloutResult:
        """Wait for a rollout (by id or handle) to end, and return its comparison."""
        handle = (await self.handle(rollout))[0] if isinstance(rollout, str) else rollout
        return await handle.result()

    async def started_with(self, handle: RolloutHandle) -> RolloutInput:
        """The input the rollout's current run started with (its file's spec and cases),
        from its history: there for a finished, failed or cancelled rollout alike."""
        client = await self.temporal()
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            (inp,) = await client.data_converter.decode(payloads, [RolloutInput])
            return inp  # type: ignore[no-any-return]
        raise RolloutNotFound(f"no history for rollout '{handle.id}'")

    async def progress(self, handle: RolloutHandle) -> RolloutProgress:
        return await handle.query(RolloutWorkflow.progress)

    async def final_progress(self, execution: WorkflowExecution) -> RolloutProgress | None:
        """A closed rollout's tallies, from its stored records: no worker needed. None while
        it runs (only its workflow knows them then)."""
        memo = await self.memo(execution)
        if execution.status == WorkflowExecutionStatus.RUNNING or memo is None:
            return None
        records = await self.records(execution)
        tallies: dict[str, VariantTally] = {}
        for record in sorted(records, key=lambda r: (r.order, r.case, r.repeat)):
            key = record.variant_key
            if key not in tallies:
                tallies[key] = VariantTally(team=record.team, variant=record.variant, total=0)
            tallies[key].total += 1
            tally(list(tallies.values()), record)
        return RolloutProgress(
            rollout_id=execution.id,
            name=memo.name,
            phase=memo.phase,
            total=memo.total,
            started=len(records),
            running=0,
            variants=list(tallies.values()),
        )

    async def memo(self, execution: WorkflowExecution) -> RolloutMemo | None:
        found: RolloutMemo | None = await execution.memo_value(
            ROLLOUT_MEMO, None, type_hint=RolloutMemo
        )
        return found

    async def records(self, execution: WorkflowExecution) -> list[ArmRecord]:
        """Every arm's record, from the store; those of a rollout still running are only
        in its workflow, so it has none yet."""
        memo = await self.memo(execution)
        if memo is None or not memo.records:
            return []
        async with store_for(self.settings) as store:
            return [r for ref in memo.records for r in parse_records(await store.get_bytes(ref))]

    async def list_rollouts(self, limit: int) -> list[RolloutSummary]:
        client = await self.temporal()
        found = []
        query = f"WorkflowType = {query_literal(ROLLOUT_WORKFLOW)}"
        async for execution in client.list_workflows(query, limit=limit):
            memo = await self.memo(execution)
            found.append(
                RolloutSummary(
                    id=execution.id,
                    name=memo.name if memo else "?",
                    total=memo.total if memo else 0,
                    phase=memo.phase if memo else "starting",
                    status=execution.status,
                    started=execution.start_time,
                    closed=execution.close_time,
                )
            )
        return found

    async def arm_transfers(self, rollout: str, since: datetime) -> dict[str, list[JournalEntry]]:
        """Each arm's transfers and rewards so far (`team/variant/label` -> entries), read
        from the ledger while the rollout runs; empty where there is no ledger."""
        from p2engine.ledger.errors import LedgerError
        from p2engine.ledger.flows import AUDIT_LIMIT, arm_entries
        from p2engine.runtime.settings import ledger_for

        try:
            ledger = ledger_for(self.settings)
            try:
                entries = await ledger.audit(since=since - timedelta(minutes=5), limit=AUDIT_LIMIT)
            finally:
                await ledger.close()
        except LedgerError:
            return {}
        return arm_entries(entries, rollout)

    async def variant_flows(self, rollout: str, since: datetime) -> dict[str, tuple[int, Decimal]]:
        """Transfers so far and their net flow per variant (`team/variant`)."""
        found: dict[str, tuple[int, Decimal]] = {}
        for key, moved in (await self.arm_transfers(rollout, since)).items():
            variant = key.rpartition("/")[0]
            count, total = found.get(variant, (0, Decimal(0)))
            found[variant] = (
                count + len(moved),
                total + sum((e.amount for e in moved), Decimal(0)),
            )
        return found

    async def arms(self, rollout: str) -> list[ListedArm]:
        """The arms started so far (P2eRollout), in id order; one that started a moment
        ago may be listed only on the next call."""
        client = await self.temporal()
        query = f"{search.ROLLOUT.name} = {query_literal(rollout)}"
        found = []
        async for execution in client.list_workflows(query):
            attributes = execution.typed_search_attributes
            variant = attributes.get(search.VARIANT) or ""
            found.append(ListedArm(execution.id, variant, attributes.get(search.AGENT)))
        return sorted(found, key=lambda arm: arm.id)

    async def ledger_snapshots(self, rollout: str) -> LedgerSnapshots:
        """The results of the rollout's ledger snapshot activities, from its history: the
        first one of its first run (before), and the last one of its last run (after),
        which is there once it settled. A rollout without a ledger has neither."""
        client = await self.temporal()
        latest = await client.get_workflow_handle(rollout).describe()
        first = latest.raw_description.workflow_execution_info.first_run_id or latest.run_id
        runs = [
            await self._snapshots(rollout, run) for run in dict.fromkeys([first, latest.run_id])
        ]
        before = runs[0][0] if runs[0] else None
        ends = runs[-1][1:] if len(runs) == 1 else runs[-1]
        after = ends[-1] if ends and latest.status == WorkflowExecutionStatus.COMPLETED else None
        return LedgerSnapshots(before, after)

    async def _snapshots(self, rollout: str, run_id: str) -> list[LedgerSnapshot | None]:
        """Each ledger snapshot the run scheduled, in order: its result, or None if it failed."""
        client = await self.temporal()
        history = await client.get_workflow_handle(rollout, run_id=run_id).fetch_history()
        scheduled: dict[int, LedgerSnapshot | None] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                if attributes.activity_type.name == LEDGER_SNAPSHOT:
                    scheduled[event.event_id] = None
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                if done.scheduled_event_id in scheduled:
                    [snapshot] = await client.data_converter.decode(
                        done.result.payloads, [LedgerSnapshot]
                    )
                    scheduled[done.scheduled_event_id] = snapshot
        return list(scheduled.values())

    async def cancel(self, handle: RolloutHandle) -> None:
        await handle.cancel()

    # --- schedules ------------------------------------------------------------------------

    async def create_schedule(
        self,
        prepared: PreparedRollout,
        *,
        schedule_id: str | None,
        cron: str | None,
        every: timedelta | None,
        overlap: str = "skip",
    ) -> str:
        if (cron is None) == (every is None):
            raise InvalidInput("give --cron or --every, one of them")
        if overlap not in OVERLAPS:
            raise InvalidInput(f"--overlap must be one of {', '.join(OVERLAPS)}, not {overlap!r}")
        name = schedule_id or prepared.input.name
        refuse(name_problem(name.removeprefix(SCHEDULE_PREFIX), "--id"))
        sid = name if name.startswith(SCHEDULE_PREFIX) else SCHEDULE_PREFIX + name
        client = await self.temporal()
        spec = (
            ScheduleSpec(cron_expressions=[cron])
            if cron is not None
            else ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every or timedelta())])
        )
        try:
            await client.create_schedule(
                sid,
                Schedule(
                    # Each run's id is this one with the time it was due appended.
                    action=ScheduleActionStartWorkflow(
                        RolloutWorkflow.run,
                        prepared.input,
                        id=PREFIX + sid.removeprefix(SCHEDULE_PREFIX),
                        task_queue=self.settings.temporal.task_queue,
                        static_summary=_summary(prepared.input),
                    ),
                    spec=spec,
                    policy=SchedulePolicy(overlap=OVERLAPS[overlap]),
                    state=ScheduleState(note=f"rollout {prepared.file.path}"),
                ),
                memo={SCHEDULE_FILE_MEMO: str(prepared.file.path)},
            )
        except ScheduleAlreadyRunningError:
            raise InvalidInput(f"a schedule '{sid}' exists already; pick another --id") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidInput(f"Temporal refused the schedule: {exc.message}") from None
            raise
        return sid

    async def schedule_file(self, description: ScheduleDescription) -> str | None:
        """The rollout file a schedule was made from; a pause's note never replaces it."""
        found: str | None = await description.memo_value(SCHEDULE_FILE_MEMO, None)
        return found

    async def schedule(self, schedule_id: str) -> tuple[ScheduleHandle, ScheduleDescription]:
        client = await self.temporal()
        for candidate in dict.fromkeys([schedule_id, SCHEDULE_PREFIX + schedule_id]):
            handle = client.get_schedule_handle(candidate)
            try:
                return handle, await handle.describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
        raise ScheduleNotFound(f"no schedule '{schedule_id}' (p2e rollout schedule list)")

    async def schedules(self) -> AsyncIterator[ScheduleListDescription]:
        client = await self.temporal()
        async for listed in await client.list_schedules():
            if listed.id.startswith(SCHEDULE_PREFIX):
                yield listed

    async def backfill(
        self, handle: ScheduleHandle, start: datetime, end: datetime, overlap: str
    ) -> None:
        if end <= start:
            raise InvalidInput("the backfill's end must be after its start")
        if overlap not in OVERLAPS:
            raise InvalidInput(f"--overlap must be one of {', '.join(OVERLAPS)}, not {overlap!r}")
        await handle.backfill(
            ScheduleBackfill(start_at=start, end_at=end, overlap=OVERLAPS[overlap])
        )


def _summary(inp: RolloutInput) -> str:
    teams = ", ".join(inp.spec.teams)
    return preview(f"rollout {inp.name}: {teams}", 200)


def budget_problem(loaded: RolloutFile, model: str | None, settings: Settings) -> str | None:
    """Why the rollout's budget cannot pay for one arm: less than the first model call of
    its cheapest arm costs (the prompt priced by litellm's local cost map). Models without
    a price (the scripted one, local endpoints) cost nothing known, so never fail this."""
    budget = loaded.spec.budget
    if budget is None:
        return None
    prices = []
    plan = loaded.plan
    for arm in (plan.arm(index) for index in range(len(plan.variants))):  # each one's first
        chosen = model or arm.agent.model or settings.default_model or DEFAULT_MODEL
        if chosen.startswith(f"{SCRIPTED_PROVIDER}/"):
            return None
        from p2engine.activities.llm import prompt_price

        price = prompt_price(chosen, arm.message)
        if price is None:
            return None
        prices.append((price, arm, chosen))
    cheapest, arm, chosen = min(prices, key=lambda found: found[0])
    if float(budget) < cheapest:
        return (
            f"budget ${budget} does not pay for one arm: the first call of {arm.team}/"
            f"{arm.variant} on {chosen} costs about ${cheapest:.6f}"
        )
    return None
