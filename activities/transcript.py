"""The transcript an agent step reads and the reply node it writes, plus `store_nodes`.

Shared by the model step and the rule step, so both see the same messages and record their
replies the same way. A worker keeps the transcripts it rebuilt or extended in a bounded LRU
keyed by head ref, so a step reads only the nodes that are new since its previous step
rather than the whole chain. Content behind a ref never changes, so an entry can never be
stale; a restarted (or another) worker just rebuilds from the store.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.agents.personas import PersonaLibrary
from p2engine.agents.turn import openai_tool_call
from p2engine.contract.models import (
    ContentNode,
    ConversationState,
    StepInput,
    StepResult,
    StoreNodesInput,
    ToolCallRequest,
    preview,
)
from p2engine.contract.names import LOAD_STATE, STORE_NODES
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.store.base import ArtifactStore

Message = dict[str, Any]
TRANSCRIPTS_KEPT = 512  # transcripts share their message dicts; an entry costs a tuple


def assistant_message(node: ContentNode) -> Message:
    """The message of a node the agent wrote: needs nothing from the store."""
    message: Message = {"role": "assistant", "content": node.text}
    if node.tool_calls:
        message["tool_calls"] = [openai_tool_call(c) for c in node.tool_calls]
    return message


async def node_to_message(node: ContentNode, store: ArtifactStore) -> Message:
    if node.kind is State.USER_MESSAGE:
        return {"role": "user", "content": node.text or ""}
    if node.kind is State.TOOL_RESULT:
        content = await store.get_text(node.result_ref) if node.result_ref else (node.text or "")
        return {"role": "tool", "tool_call_id": node.tool_call_id, "content": content}
    if node.kind is State.AGENT_RESULT:
        # The child's answer is its reply node; the model reads it as the delegate result.
        result = json.loads(node.text or "{}")
        if node.result_ref:
            result["answer"] = (await store.get_node(node.result_ref)).text or ""
        return {"role": "tool", "tool_call_id": node.tool_call_id, "content": json.dumps(result)}
    return assistant_message(node)


class _Transcripts:
    """The LRU: head ref -> that chain's messages, oldest first (never mutated)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, tuple[Message, ...]] = OrderedDict()

    def get(self, ref: str) -> tuple[Message, ...] | None:
        messages = self._entries.get(ref)
        if messages is not None:
            self._entries.move_to_end(ref)
        return messages

    def put(self, ref: str, messages: tuple[Message, ...]) -> None:
        self._entries[ref] = messages
        self._entries.move_to_end(ref)
        if len(self._entries) > self.limit:
            self._entries.popitem(last=False)


class Transcript:
    """Reads and writes conversation content in the artifact store for agent steps."""

    def __init__(
        self, store: ArtifactStore, personas: PersonaLibrary, kept: int = TRANSCRIPTS_KEPT
    ) -> None:
        self.store = store
        self.personas = personas
        self._kept = _Transcripts(kept)
        self._store_id: str | None = None

    async def messages(self, inp: StepInput) -> list[Message]:
        """Store the nodes the workflow made and rebuild the transcript from the head. The
        writes, the reads and the persona are independent, so they wait on the disk together."""
        await self._check_store(inp.store_id)
        _, chain, persona = await asyncio.gather(
            asyncio.gather(*(self.store.put_node(node) for node in inp.pending)),
            self._chain(inp.head, {node.ref(): node for node in inp.pending}),
            self._persona(inp),
        )
        system = [inp.system_prompt] if inp.system_prompt else []
        if persona is not None:
            system.append(persona)
        # A fresh list of the kept dicts: callers may reorder it, and no caller edits a message.
        return [{"role": "system", "content": text} for text in system] + list(chain)

    async def _check_store(self, expected: str | None) -> None:
        """Refuse a step whose content is in another store than this worker's: on the wrong
        machine its transcript would be missing. Not retried, since every retry meets the
        same store; the step's failure says what to fix. A conversation started before
        store ids names none, and is not checked."""
        if expected is None:
            return
        if self._store_id is None:
            self._store_id = await self.store.identity()
        if self._store_id != expected:
            raise ApplicationError(
                "this worker's artifact store is not the conversation's; share one with "
                f"P2E_DATABASE_URL (the conversation's: {expected}, this worker's: "
                f"{self._store_id} at {self.store.location})",
                type="WrongStore",
                non_retryable=True,
            )

    async def _persona(self, inp: StepInput) -> str | None:
        if not inp.persona:
            return None
        # A persona is a file read: off the event loop like every other read.
        return await asyncio.to_thread(
            self.personas.render,
            inp.persona,
            agent_id=inp.agent_id,
            description=inp.description,
            tools=inp.tools,
        )

    async def _chain(self, head: str, pending: dict[str, ContentNode]) -> tuple[Message, ...]:
        """The messages up to `head`: the kept ones, then the nodes added since (taken from
        `pending` where the workflow sent them, else read from the store in one go)."""
        new: list[ContentNode] = []
        kept: tuple[Message, ...] = ()
        ref: str | None = head
        while ref is not None:
            if (hit := self._kept.get(ref)) is not None:
                kept = hit
                break
            node = pending.get(ref)
            if node is None:
                new.extend(reversed(await self.store.chain(ref)))
                break
            new.append(node)
            ref = node.parent
        new.reverse()
        messages = kept + tuple(
            await asyncio.gather(*(node_to_message(node, self.store) for node in new))
        )
        self._kept.put(head, messages)
        return messages

    async def reply(
        self,
        inp: StepInput,
        text: str | None,
        calls: list[ToolCallRequest],
        usage: Usage,
        model: str,
    ) -> StepResult:
        node = ContentNode(
            kind=State.TOOL_CALL if calls else State.ASSISTANT_MESSAGE,
            parent=inp.head,
            conversation_id=inp.conversation_id,
            step=inp.step,
            agent_id=inp.agent_id,
            text=text,
            tool_calls=calls,
        )
        ref = await self.store.put_node(node)
        if (before := self._kept.get(inp.head)) is not None:
            self._kept.put(ref, (*before, assistant_message(node)))
        return StepResult(
            ref=ref,
            text_preview=preview(text),
            tool_calls=calls,
            usage=usage,
            model=model,
        )


class ContentActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name=STORE_NODES)
    async def store_nodes(self, inp: StoreNodesInput) -> list[str]:
        return [await self.store.put_node(node) for node in inp.nodes]

    @activity.defn(name=LOAD_STATE)
    async def load_state(self, ref: str) -> ConversationState:
        """A branch's state at start, stored by whoever started it."""
        return ConversationState.model_validate_json(await self.store.get_text(ref))
