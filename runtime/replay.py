"""Replaying a recorded history against the current workflow code, in this process.

A replay re-runs the workflow code on the recorded events and checks that it issues the
same commands; nothing runs again (no model call, no tool, no transfer: their results come
from the history). Besides the verdict it keeps the workflow object it rebuilt, so that
what the run held at any step can be read from it (its stack and checkpoints): how a
closed conversation, or one no worker serves, is branched and inspected.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from p2engine.contract.errors import InvalidInput, P2eError, refuse
from p2engine.contract.learning import LEARN_WORKFLOW
from p2engine.contract.models import BranchOrigin, StackEntry, WaitingFor
from p2engine.contract.names import (
    ACTIVE_BRANCH_WORKFLOW,
    COMPARE_WORKFLOW,
    CONVERSATION_WORKFLOW,
    ROLLOUT_WORKFLOW,
)
from p2engine.contract.usage import Usage
from p2engine.runtime.client import LazyClient
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.converter import DATA_CONVERTER
from p2engine.workflows.active_branch import ActiveBranchWorkflow
from p2engine.workflows.branching import branch_problem, state_at
from p2engine.workflows.compare import CompareWorkflow
from p2engine.workflows.conversation import ConversationWorkflow
from p2engine.workflows.learning import LearningWorkflow
from p2engine.workflows.rollout import RolloutWorkflow

# A replay runs no activity and waits for nothing: one that takes this long never ends.
REPLAY_TIMEOUT_S = 300.0
WORKFLOWS = [
    ConversationWorkflow, CompareWorkflow, ActiveBranchWorkflow, RolloutWorkflow, LearningWorkflow
]  # fmt: skip
WORKFLOW_NAMES = (
    CONVERSATION_WORKFLOW, COMPARE_WORKFLOW, ACTIVE_BRANCH_WORKFLOW, ROLLOUT_WORKFLOW,
    LEARN_WORKFLOW,
)  # fmt: skip


class ReplayTimeout(P2eError):
    """The replayer did not finish with a history (a damaged one can stall it)."""


@dataclass(frozen=True)
class Replayed:
    """A replay's verdict, and the workflow object as the replay left it."""

    failure: Exception | None
    instance: Any  # a ConversationWorkflow or CompareWorkflow, None if the run never began

    @property
    def problem(self) -> str | None:
        """The first non-determinism (or other failure) in one line, naming its event."""
        if self.failure is None:
            return None
        text = str(self.failure)
        found = re.search(r'message: "(?:\[TMPRL\d+\] )?(.*?)(?<!\\)"', text)
        return " ".join((found.group(1) if found else text).split())[:300]

    @property
    def event_id(self) -> int | None:
        """The id of the recorded event the replay could not match, when it names one."""
        found = re.search(r"HistoryEvent\(id: (\d+)", str(self.failure or ""))
        return int(found.group(1)) if found else None


async def replay(history: WorkflowHistory) -> Replayed:
    """Replay `history` with the current code. Unsandboxed, so the rebuilt object can be read
    afterwards; what is checked, the commands against the events, is the same."""
    kept = _KeepInstance()
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=UnsandboxedWorkflowRunner(),
        data_converter=DATA_CONVERTER,
        interceptors=[kept],
        runtime=_quiet_runtime(),
    )
    try:
        result = await asyncio.wait_for(
            replayer.replay_workflow(history, raise_on_replay_failure=False), REPLAY_TIMEOUT_S
        )
    except TimeoutError:
        raise ReplayTimeout(
            f"{history.workflow_id}: the replay did not finish within {REPLAY_TIMEOUT_S:.0f} s"
        ) from None
    return Replayed(result.replay_failure, kept.instance)


# Where a replayed run's failures are logged: the workflow instance's event loop (the SDK's:
# a failed activation, an unawaited child or activity that failed), and asyncio's.
_REPORTERS = ("temporalio.worker._workflow_instance", "asyncio")


class _ReportedInTheVerdict(logging.Filter):
    """Drops a replayed run's logged exceptions: a failed activation is the verdict's
    problem, and an unawaited child or activity that failed or was cancelled is recorded in
    the history; a replay reports each once, in its verdict, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.exc_info


@contextmanager
def failures_in_the_verdict_only() -> Iterator[None]:
    """While the block runs, and until the replays it made are collected, a replayed run's
    exceptions are not logged: wrap the whole use of `Replayed` objects in it."""
    logs = [logging.getLogger(name) for name in _REPORTERS]
    quiet = _ReportedInTheVerdict()
    for log in logs:
        log.addFilter(quiet)
    try:
        yield
    finally:
        gc.collect()  # the replayed run's futures report when they are collected: now
        for log in logs:
            log.removeFilter(quiet)


@dataclass(frozen=True)
class ConversationPoint:
    """What a replayed conversation held at one point: its FSM state, step and stack."""

    state: str
    step: int
    waiting_for: WaitingFor | None
    usage: Usage
    stack: list[StackEntry]


def conversation_at(replayed: Replayed, step: int | None) -> ConversationPoint:
    """The replayed conversation as it was at the end of `step`, or where its history ends."""
    instance = replayed.instance
    if not isinstance(instance, ConversationWorkflow):
        raise InvalidInput("--step and --until-event show conversations only")
    s = instance.s
    if step is not None:
        if problem := branch_problem(s, step, None):
            raise InvalidInput(problem)
        s = state_at(s, step, BranchOrigin(source="replay", step=step))
    return ConversationPoint(str(s.state), s.step, s.waiting_for, s.usage, list(s.stack))


class HistoryClient(LazyClient):
    """Recorded histories to replay, by workflow id or by visibility query."""

    async def history(self, workflow_id: str) -> WorkflowHistory:
        """The history of a workflow, with or without the `conv-` prefix of its id."""
        handle, _ = await ConversationClient(self.settings, await self.temporal()).describe(
            workflow_id
        )
        return await handle.fetch_history()

    async def matching(self, query: str, limit: int) -> AsyncIterator[WorkflowHistory]:
        """The history of every run the query finds, newest first, at most `limit`."""
        client = await self.temporal()
        async for execution in client.list_workflows(query, limit=limit):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            yield await handle.fetch_history()


def until_event(history: WorkflowHistory, event_id: int) -> WorkflowHistory:
    """The history as it was when event `event_id` was recorded."""
    events = [e for e in history.events if e.event_id <= event_id]
    return WorkflowHistory(history.workflow_id, events)


def history_from_file(path: Path) -> WorkflowHistory:
    """A downloaded history: the Web UI's download or `temporal workflow show --output
    json`, which hold the events alone or under "events". Its workflow id is the one its
    first event records, else the file's name."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not a JSON history ({exc.msg})") from None
    events = data.get("events") if isinstance(data, dict) else data
    if not isinstance(events, list) or not events:
        raise InvalidInput(f"{path}: no history events in it")
    try:
        history = WorkflowHistory.from_json(path.stem, {"events": events})
    except Exception as exc:  # the proto parser's own error types
        raise InvalidInput(f"{path}: not a workflow history ({exc})") from None
    refuse(history_problem(history, path))
    # The run's id matters (child ids are built from it); servers record it at the start.
    started = history.events[0].workflow_execution_started_event_attributes
    return WorkflowHistory(started.workflow_id or path.stem, history.events)


def history_problem(history: WorkflowHistory, source: Path | str) -> str | None:
    """What makes a history unfit to replay, checked before the replayer sees it (which
    panics, or waits, on a damaged one): it starts with a workflow of ours, its events are
    numbered 1, 2, 3, ... and each is of a known type with its attributes."""
    events = history.events
    if events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return f"{source}: the history does not begin with the workflow's start"
    for number, event in enumerate(events, start=1):
        if event.event_id != number:
            return f"{source}: event {number} is numbered {event.event_id}; events are missing"
        if event.event_type == EventType.EVENT_TYPE_UNSPECIFIED or not event.WhichOneof(
            "attributes"
        ):
            return f"{source}: event {number} has no type or no attributes"
    kind = events[0].workflow_execution_started_event_attributes.workflow_type.name
    known = list(WORKFLOW_NAMES)
    if kind not in known:
        return f"{source}: a {kind or 'nameless'} workflow; p2e replays {', '.join(known)}"
    return None


_runtime: Runtime | None = None


def _quiet_runtime() -> Runtime:
    """A runtime whose core logs errors only: a replay that finds a non-determinism reports
    it once, in its result, not also as a warning on stderr."""
    global _runtime
    if _runtime is None:
        logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        _runtime = Runtime(telemetry=TelemetryConfig(logging=logging))
    return _runtime


class _KeepInstance(Interceptor):
    def __init__(self) -> None:
        self.instance: Any = None

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        keeper = self

        class Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                keeper.instance = workflow.instance()
                return await super().execute_workflow(input)

        return Inbound
