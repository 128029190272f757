"""The transcript an agent step reads and the reply node it writes, plus `store_nodes`.

Shared by the model step and the rule step, so both see the same messages and record their
replies the same way.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio import activity

from agents.personas import PersonaLibrary
from contract.models import (
    ContentNode,
    StepInput,
    StepResult,
    StoreNodesInput,
    ToolCallRequest,
    Usage,
    preview,
)
from contract.names import STORE_NODES
from contract.states import State
from store.artifacts import ArtifactStore


def node_to_message(node: ContentNode, store: ArtifactStore) -> dict[str, Any]:
    if node.kind is State.USER_MESSAGE:
        return {"role": "user", "content": node.text or ""}
    if node.kind is State.TOOL_RESULT:
        content = store.get_text(node.result_ref) if node.result_ref else (node.text or "")
        return {"role": "tool", "tool_call_id": node.tool_call_id, "content": content}
    if node.kind is State.AGENT_RESULT:
        # The child's answer is its reply node; the model reads it as the delegate result.
        result = json.loads(node.text or "{}")
        if node.result_ref:
            result["answer"] = store.get_node(node.result_ref).text or ""
        return {"role": "tool", "tool_call_id": node.tool_call_id, "content": json.dumps(result)}
    message: dict[str, Any] = {"role": "assistant", "content": node.text}
    if node.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in node.tool_calls
        ]
    return message


class Transcript:
    """Reads and writes conversation content in the artifact store for agent steps."""

    def __init__(self, store: ArtifactStore, personas: PersonaLibrary) -> None:
        self.store = store
        self.personas = personas

    def messages(self, inp: StepInput) -> list[dict[str, Any]]:
        """Store the nodes the workflow made, then rebuild the transcript from the head."""
        for node in inp.pending:
            self.store.put_node(node)
        messages = [node_to_message(n, self.store) for n in self.store.chain(inp.head)]
        system = [inp.system_prompt] if inp.system_prompt else []
        if inp.persona:
            system.append(
                self.personas.render(
                    inp.persona, agent_id=inp.agent_id, description=inp.description, tools=inp.tools
                )
            )
        return [{"role": "system", "content": text} for text in system] + messages

    def reply(
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
        return StepResult(
            ref=self.store.put_node(node),
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
        return [self.store.put_node(node) for node in inp.nodes]
