"""Search attribute keys, registered on the server from deploy/temporal-dev.yaml, and the
values a conversation shows in them. Pure, tested without Temporal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from p2engine.contract.models import ConversationInput, ConversationState
from p2engine.contract.states import State
from p2engine.workflows.evaluations import score as conversation_score

AGENT = SearchAttributeKey.for_keyword("P2eAgent")
ROLLOUT = SearchAttributeKey.for_keyword("P2eRollout")
VARIANT = SearchAttributeKey.for_keyword("P2eVariant")
BRANCH_OF = SearchAttributeKey.for_keyword("P2eBranchOf")
STATE = SearchAttributeKey.for_keyword("P2eState")
STEP = SearchAttributeKey.for_int("P2eStep")
SCORE = SearchAttributeKey.for_float("P2eScore")

ALL = (AGENT, ROLLOUT, VARIANT, BRANCH_OF, STATE, STEP, SCORE)
FIRST_STEP = 1  # the number of a conversation's first model or rule step


def conversation_attributes(agent_id: str, s: ConversationState) -> list[SearchAttributePair[Any]]:
    """What a conversation shows the Web UI's filters: whose it is, its state and step, and
    once it has been evaluated, its mean score."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(AGENT, agent_id),
        SearchAttributePair(STATE, s.state.value),
        SearchAttributePair(STEP, s.step),
    ]
    if (score := conversation_score(s.stack)) is not None:
        pairs.append(SearchAttributePair(SCORE, score))
    return pairs


def start_attributes(inp: ConversationInput) -> TypedSearchAttributes:
    """What a conversation shows from its start: whose it is and, when it opens with a
    message, the state and step its first workflow task would otherwise upsert (that task
    then writes nothing to the visibility store)."""
    if inp.message is None or inp.resume is not None or inp.branch is not None:
        return TypedSearchAttributes([SearchAttributePair(AGENT, inp.agent.id)])
    first = ConversationState(state=State.USER_MESSAGE, step=FIRST_STEP)
    return TypedSearchAttributes(conversation_attributes(inp.agent.id, first))


def changed_attributes(
    current: TypedSearchAttributes, wanted: Sequence[SearchAttributePair[Any]]
) -> list[SearchAttributeUpdate[Any]]:
    """The updates that bring `current` to `wanted`, none for a value already there: every
    update is a write to the visibility store."""
    return [
        pair.key.value_set(pair.value) for pair in wanted if current.get(pair.key) != pair.value
    ]
