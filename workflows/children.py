"""What a delegation starts: the child conversation's input, search attributes and summary.
Pure, tested without Temporal; the workflow only starts the child with them."""

from __future__ import annotations

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from p2engine.contract.agent import AgentSpec
from p2engine.contract.models import Catalog, ConversationInput, preview
from p2engine.workflows import search
from p2engine.workflows.evaluations import evaluator_ids


def child_input(
    parent: ConversationInput,
    target: AgentSpec,
    message: str,
    turn_head: str | None,
    catalog: Catalog,
) -> ConversationInput:
    """The child runs `target` on `message` with the parent's team (`catalog`: the parent's,
    with what it read for the target), one more agent in its lineage, and the parent's
    transcript when the delegating agent shares its history."""
    shares = parent.agent.delegation_context == "history"
    return ConversationInput(
        agent=target,
        message=message,
        catalog=catalog.for_agent(target, evaluator_ids(target, [])),
        lineage=[*parent.lineage, parent.agent.id],
        context_head=turn_head if shares else None,
        continue_as_new_events=parent.continue_as_new_events,
        revision=parent.revision,
        store_id=parent.store_id,
        routing=parent.routing,
    )


def child_search_attributes(target: AgentSpec) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(search.AGENT, target.id)])


def child_summary(target: AgentSpec, message: str) -> str:
    return preview(f"{target.id}: {message}", 200)
