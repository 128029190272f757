"""Helpers for integration tests: agents, history reading."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from agents.registry import AgentRegistry
from agents.spec import AgentSpec
from runtime.settings import Settings


def agent(settings: Settings, agent_id: str = "agent_alpha", **changes: Any) -> AgentSpec:
    spec = AgentRegistry.load(settings.agents_file).get(agent_id)
    return spec.model_copy(update=changes) if changes else spec


async def activity_attempts(handle: WorkflowHandle[Any, Any]) -> dict[str, list[int]]:
    """Activity type -> the attempt number of each started execution, from the history."""
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


async def activity_summaries(handle: WorkflowHandle[Any, Any]) -> list[str]:
    from temporalio.contrib.pydantic import pydantic_data_converter

    history = await handle.fetch_history()
    summaries = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            payload = event.user_metadata.summary
            [text] = await pydantic_data_converter.decode([payload], [str])
            summaries.append(text)
    return summaries
