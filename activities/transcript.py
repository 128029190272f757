"""The prompt an agent step reads (its config and transcript) and the reply node it writes,
plus `store_nodes`.

Shared by the model step and the rule step, so both see the same messages and record their
replies the same way. A worker keeps the transcripts it rebuilt or extended in a bounded LRU
keyed by head ref, so a step reads only the nodes that are new since its previous step
rather than the whole chain, and likewise the configs that steps name by ref. Content behind
a ref never changes, so an entry can never be stale; a restarted (or another) worker just
reads again from the store.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.agents.personas import PersonaLibrary, render
from p2engine.agents.turn import openai_tool_call
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.models import (
    Catalog,
    CatalogPartInput,
    ContentNode,
    ConversationState,
    StepInput,
    StepResult,
    StoreNodesInput,
    ToolCallRequest,
    preview,
)
from p2engine.contract.names import (
    CATALOG_NOT_FOUND,
    CONFIG_NOT_FOUND,
    LOAD_STATE,
    READ_CATALOG,
    STORE_NODES,
)
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.store.base import ArtifactNotFound, ArtifactStore

Message = dict[str, Any]
TRANSCRIPTS_KEPT = 512  # transcripts share their message dicts; an entry costs a tuple
CONFIGS_KEPT = 256  # a config is a few hundred bytes; a worker serves few at a time
CATALOGS_KEPT = 16  # a catalog is a few KB; a worker's conversations share a handful
V = TypeVar("V")


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


class _Kept(Generic[V]):
    """An LRU by ref of what content behind the ref became (never mutated): head ref -> that
    chain's messages, oldest first; config ref -> the config."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, ref: str) -> V | None:
        value = self._entries.get(ref)
        if value is not None:
            self._entries.move_to_end(ref)
        return value

    def put(self, ref: str, value: V) -> None:
        self._entries[ref] = value
        self._entries.move_to_end(ref)
        if len(self._entries) > self.limit:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class Prompt:
    """What an agent step reads: the config it runs and its messages, system ones first."""

    config: AgentConfig
    messages: list[Message]


class Transcript:
    """Reads and writes conversation content in the artifact store for agent steps."""

    def __init__(
        self, store: ArtifactStore, personas: PersonaLibrary, kept: int = TRANSCRIPTS_KEPT
    ) -> None:
        self.store = store
        self.personas = personas
        self._kept: _Kept[tuple[Message, ...]] = _Kept(kept)
        self._configs: _Kept[AgentConfig] = _Kept(CONFIGS_KEPT)
        self._store_id: str | None = None

    async def prompt(self, inp: StepInput) -> Prompt:
        """The step's config, then the nodes the workflow made stored and the transcript
        rebuilt from the head. The writes, the reads and the persona are independent, so
        they wait on the disk together."""
        await self._check_store(inp.store_id)
        config = await self._config(inp)
        _, chain, persona = await asyncio.gather(
            asyncio.gather(*(self.store.put_node(node) for node in inp.pending)),
            self._chain(inp.head, {node.ref(): node for node in inp.pending}),
            self._persona(inp, config),
        )
        system = [config.system_prompt] if config.system_prompt else []
        if persona is not None:
            system.append(persona)
        # A fresh list of the kept dicts: callers may reorder it, and no caller edits a message.
        messages = [{"role": "system", "content": text} for text in system] + list(chain)
        return Prompt(config, messages)

    async def _config(self, inp: StepInput) -> AgentConfig:
        """The config the step runs. One sent along is stored first (under the ref the
        workflow named: the store is content-addressed, so a retry stores nothing new); one
        named by ref alone is read from the store. A ref names one config forever, so the
        worker keeps what it stored or read."""
        ref, sent = inp.config_ref, inp.inline_config()
        if ref is None:  # before CONFIG_BY_REF: the knobs came inline
            assert sent is not None
            return sent
        if (kept := self._configs.get(ref)) is not None:
            return kept
        if sent is not None:
            await self.store.put_text(sent.canonical())
            config = sent
        else:
            try:
                config = AgentConfig.model_validate_json(await self.store.get_text(ref))
            except ArtifactNotFound:
                raise _missing(self.store, f"the agent config {ref}", CONFIG_NOT_FOUND) from None
        self._configs.put(ref, config)
        return config

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

    async def _persona(self, inp: StepInput, config: AgentConfig) -> str | None:
        """The persona rendered for this agent: from the config's persona text, or from the
        template on this worker's disk for a config without one (a step's knobs inline, before
        CONFIG_BY_REF, or a catalog made before persona texts)."""
        if not config.persona:
            return None
        tools = list(config.tools)
        if config.persona_text is not None:
            return render(
                config.persona_text, agent_id=inp.agent_id, description=inp.description, tools=tools
            )
        # A persona is a file read: off the event loop like every other read.
        return await asyncio.to_thread(
            self.personas.render,
            config.persona,
            agent_id=inp.agent_id,
            description=inp.description,
            tools=tools,
        )

    async def _chain(self, head: str, pending: dict[str, ContentNode]) -> tuple[Message, ...]:
        """The messages up to `head`: the kept ones, then the nodes added since, taken from
        `pending` where the workflow sent them, else read from the store. A node stored by
        another activity (a tool's result) is read alone, as its parent is usually kept; past
        a second such node, the rest of the chain is read in one go."""
        new: list[ContentNode] = []
        kept: tuple[Message, ...] = ()
        ref: str | None = head
        read_alone = False
        while ref is not None:
            if (hit := self._kept.get(ref)) is not None:
                kept = hit
                break
            node = pending.get(ref)
            if node is None:
                if read_alone:
                    new.extend(reversed(await self.store.chain(ref)))
                    break
                node, read_alone = await self.store.get_node(ref), True
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


def _missing(store: ArtifactStore, what: str, error_type: str) -> ApplicationError:
    """Content a conversation names by ref that this worker's store lacks: not retried, since
    every retry meets the same store."""
    return ApplicationError(
        f"{what} is not in this worker's artifact store ({store.location}); "
        "whoever stored it used another",
        type=error_type,
        non_retryable=True,
    )


class ContentActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._catalogs: _Kept[Catalog] = _Kept(CATALOGS_KEPT)

    @activity.defn(name=STORE_NODES)
    async def store_nodes(self, inp: StoreNodesInput) -> list[str]:
        return [await self.store.put_node(node) for node in inp.nodes]

    @activity.defn(name=READ_CATALOG)
    async def read_catalog(self, inp: CatalogPartInput) -> Catalog:
        """The agent specs and persona texts a conversation's slim catalog left in the store.
        A ref names one catalog forever, so the worker keeps the ones it read."""
        catalog = self._catalogs.get(inp.ref)
        if catalog is None:
            try:
                catalog = Catalog.model_validate_json(await self.store.get_text(inp.ref))
            except ArtifactNotFound:
                raise _missing(self.store, f"the catalog {inp.ref}", CATALOG_NOT_FOUND) from None
            self._catalogs.put(inp.ref, catalog)
        return catalog.part(inp.agents, inp.personas)

    @activity.defn(name=LOAD_STATE)
    async def load_state(self, ref: str) -> ConversationState:
        """A branch's state at start, stored by whoever started it."""
        return ConversationState.model_validate_json(await self.store.get_text(ref))
