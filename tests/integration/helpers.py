"""Helpers for integration tests: agents, history reading, waiting on conversations."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from p2engine.agents.registry import AgentRegistry
from p2engine.contract.agent import AgentSpec
from p2engine.contract.models import (
    ConversationInput,
    ConversationResult,
    ConversationStatus,
    StackEntry,
    StepInput,
    WaitingFor,
)
from p2engine.contract.names import LLM_STEP
from p2engine.contract.states import State
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import Settings
from p2engine.workflows.conversation import ConversationWorkflow


def agent(settings: Settings, agent_id: str = "agent_alpha", **changes: Any) -> AgentSpec:
    """The agent from agents.yml with `changes`, validated (a `limits` dict becomes limits)."""
    spec = AgentRegistry.load(settings.agents_file).get(agent_id)
    return AgentSpec.model_validate({**spec.model_dump(), **changes}) if changes else spec


async def activity_attempts(handle: WorkflowHandle[Any, Any]) -> dict[str, list[int]]:
    """Activity type -> the attempt number of each started execution, from the history
    (activity tasks only: a local run's attempt is in its marker, `local_runs`)."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    attempts: dict[str, list[int]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
            attempts.setdefault(name, [])
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            attempts[scheduled[started.scheduled_event_id]].append(started.attempt)
    return attempts


LOCAL = "core_local_activity"  # the marker of a local activity's run


def _local_activity(event: HistoryEvent) -> dict[str, Any] | None:
    """What a local activity's marker records of it (type, attempt, schedule and completion
    times), or None for any other event."""
    marker = event.marker_recorded_event_attributes
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED or marker.marker_name != LOCAL:
        return None
    [data] = event.marker_recorded_event_attributes.details["data"].payloads
    recorded: dict[str, Any] = json.loads(data.data)
    return recorded


async def _local_records(handle: WorkflowHandle[Any, Any]) -> list[dict[str, Any]]:
    history = await handle.fetch_history()
    return [local for e in history.events if (local := _local_activity(e))]


async def local_activities(handle: WorkflowHandle[Any, Any], of: str | None = None) -> list[str]:
    """The activity type of each local activity the run recorded (a marker each), or of
    those of type `of`."""
    types = [local["activity_type"] for local in await _local_records(handle)]
    return [t for t in types if of is None or t == of]


async def local_runs(handle: WorkflowHandle[Any, Any], activity_type: str) -> list[dict[str, Any]]:
    """The markers' records of each local run of `activity_type`, in history order."""
    return [r for r in await _local_records(handle) if r["activity_type"] == activity_type]


async def start_input(handle: WorkflowHandle[Any, Any]) -> ConversationInput:
    """The input the conversation's first run started with, as its history holds it."""
    from p2engine.runtime.converter import DATA_CONVERTER

    history = await handle.fetch_history()
    payloads = list(history.events[0].workflow_execution_started_event_attributes.input.payloads)
    [inp] = await DATA_CONVERTER.decode(payloads, [ConversationInput])
    assert isinstance(inp, ConversationInput)
    return inp


async def step_inputs(handle: WorkflowHandle[Any, Any]) -> list[StepInput]:
    """The input of each model step the run scheduled, as its history holds it."""
    from p2engine.runtime.converter import DATA_CONVERTER

    history = await handle.fetch_history()
    inputs = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == LLM_STEP:
                payloads = list(scheduled.input.payloads)
                [inp] = await DATA_CONVERTER.decode(payloads, [StepInput])
                inputs.append(inp)
    return inputs


async def activity_summaries(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The summary of each activity the run scheduled, local ones (their markers) included,
    in history order: what the Web UI shows on each."""
    from p2engine.runtime.converter import DATA_CONVERTER

    history = await handle.fetch_history()
    summaries = []
    for event in history.events:
        if (
            _local_activity(event)
            or event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ):
            payload = event.user_metadata.summary
            [text] = await DATA_CONVERTER.decode([payload], [str])
            summaries.append(text)
    return summaries


def unique(prefix: str) -> str:
    """A conversation name no other test (or earlier session run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kinds(stack: list[StackEntry]) -> list[State]:
    return [entry.kind for entry in stack]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30, interval: float = 0.1
) -> None:
    """Wait until `check()` is true, or fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(interval)


def conversation(
    client: Client, workflow_id: str
) -> WorkflowHandle[ConversationWorkflow, ConversationResult]:
    """A typed handle (latest run), for `execute_update(ConversationWorkflow.answer, ...)`."""
    return client.get_workflow_handle_for(ConversationWorkflow.run, workflow_id)


async def status(handle: WorkflowHandle[Any, Any]) -> ConversationStatus:
    current: ConversationStatus = await handle.query("state", result_type=ConversationStatus)
    return current


async def wait_until_waiting(
    handle: WorkflowHandle[Any, Any], who: WaitingFor, *, timeout: float = 30
) -> ConversationStatus:
    """Wait until the conversation waits for `who` ("user" or "human"); return its status."""

    async def waiting() -> bool:
        try:
            current = await status(handle)
        except RPCError as exc:  # not started yet (a child about to be created)
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return current.state is State.WAITING and current.waiting_for == who

    await eventually(waiting, timeout=timeout)
    return await status(handle)


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def converse(
    client: Client, settings: Settings, spec: AgentSpec, message: str, label: str
) -> tuple[WorkflowHandle[Any, ConversationResult], ConversationResult]:
    """Run a one-shot conversation under a fresh name and wait for its result."""
    handle, _ = await start_conversation(client, settings, spec, message, name=unique(label))
    return handle, await handle.result()
