"""Client-side operations on conversations, shared by the CLI, benchmarks and tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from agents.spec import AgentSpec
from runtime.errors import ConversationNotFound
from runtime.settings import Settings
from workflows import search
from workflows.models import ConversationInput, ConversationResult, preview

WORKFLOW_TYPE = "ConversationWorkflow"
PREFIX = "conv-"


def conversation_id(name: str) -> str:
    return name if name.startswith(PREFIX) else PREFIX + name


def generated_name(agent_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{agent_id}-{stamp}-{secrets.token_hex(2)}"


async def describe(
    client: Client, workflow_id: str
) -> tuple[WorkflowHandle[object, ConversationResult], WorkflowExecutionDescription]:
    """Find a conversation by id, accepting the id with or without the `conv-` prefix."""
    for candidate in dict.fromkeys([workflow_id, conversation_id(workflow_id)]):
        handle = client.get_workflow_handle(candidate, result_type=ConversationResult)
        try:
            return handle, await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    raise ConversationNotFound(f"no conversation '{workflow_id}'")


async def start_conversation(
    client: Client,
    settings: Settings,
    agent: AgentSpec,
    message: str,
    *,
    name: str | None = None,
    model: str | None = None,
) -> tuple[WorkflowHandle[object, ConversationResult], bool]:
    """Start a conversation, or attach to the one that already has this id.

    Returns the handle and whether a new run was started. A finished conversation is not
    started again: its id names that run for good.
    """
    if agent.model is None:
        agent = agent.model_copy(update={"model": settings.default_model})
    workflow_id = conversation_id(name or generated_name(agent.id))
    if name is not None:
        try:
            handle, _ = await describe(client, workflow_id)
            return handle, False
        except ConversationNotFound:
            pass
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        ConversationInput(agent=agent, message=message, model=model),
        id=workflow_id,
        task_queue=settings.temporal.task_queue,
        result_type=ConversationResult,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(search.AGENT, agent.id)]),
        static_summary=preview(f"{agent.id}: {message}", 200),
    )
    return handle, True


def is_running(description: WorkflowExecutionDescription) -> bool:
    return description.status == WorkflowExecutionStatus.RUNNING
