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

from agents.scripted import PROVIDER as SCRIPTED_PROVIDER
from contract.agent import AgentSpec
from contract.errors import ConversationNotFound, InvalidInput
from contract.ids import name_problem
from contract.inputs import message_problem
from contract.models import Catalog, ConversationInput, ConversationResult, preview
from runtime.catalog import check_agent, load_catalog, resolve_agent
from runtime.settings import Settings
from workflows import search

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


def check_model(model: str) -> None:
    """Refuse a model string litellm cannot route, before a workflow starts with it. The
    scripted model needs no check (nor the seconds it takes to import litellm)."""
    if not model.strip() or not model.isprintable() or any(c.isspace() for c in model):
        raise InvalidInput(f"model must be a litellm model string, not {model!r}")
    if model.startswith(f"{SCRIPTED_PROVIDER}/"):
        return
    from activities.llm import model_problem

    if problem := model_problem(model):
        raise InvalidInput(problem)


def check_message(text: str, what: str = "message") -> None:
    if problem := message_problem(text, what):
        raise InvalidInput(problem)


def check_name(name: str, what: str = "--id") -> None:
    """A conversation name a user chooses: `conv-` may be given or left out."""
    if problem := name_problem(name.removeprefix(PREFIX), what):
        raise InvalidInput(problem)


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
    if message is not None:
        check_message(message)
    if name is not None:
        check_name(name)
    catalog = catalog or load_catalog(settings)
    agent = resolve_agent(agent, settings)
    check_agent(agent, catalog, settings.agents_file)
    for chosen in (model, agent.model):
        if chosen is not None:
            check_model(chosen)
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
