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
from runtime.catalog import check_agent, load_catalog, resolve_agent
from runtime.errors import ConversationNotFound
from runtime.settings import Settings
from workflows import search
from workflows.models import Catalog, ConversationInput, ConversationResult, preview

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
    message: str | None,
    *,
    name: str | None = None,
    model: str | None = None,
    interactive: bool = False,
    catalog: Catalog | None = None,
) -> tuple[WorkflowHandle[object, ConversationResult], bool]:
    """Start a conversation, or attach to the one that already has this id.

    Returns the handle and whether a new run was started. A finished conversation is not
    started again: its id names that run for good. An interactive conversation may start
    without a message; it then waits for `send_message`.
    """
    catalog = catalog or load_catalog(settings)
    agent = resolve_agent(agent, settings)
    check_agent(agent, catalog, settings.agents_file)
    workflow_id = conversation_id(name or generated_name(agent.id))
    if name is not None:
        try:
            handle, _ = await describe(client, workflow_id)
            return handle, False
        except ConversationNotFound:
            pass
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        ConversationInput(
            agent=agent,
            message=message,
            model=model,
            catalog=catalog,
            interactive=interactive,
            continue_as_new_events=settings.conversation.continue_as_new_events,
        ),
        id=workflow_id,
        task_queue=settings.temporal.task_queue,
        result_type=ConversationResult,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(search.AGENT, agent.id)]),
        static_summary=preview(f"{agent.id}: {message or '(interactive)'}", 200),
    )
    return handle, True


def is_running(description: WorkflowExecutionDescription) -> bool:
    return description.status == WorkflowExecutionStatus.RUNNING
