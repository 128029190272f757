"""Everything that crosses a workflow/activity/client boundary.

Sent with the pydantic data converter. Old histories must keep decoding, so new fields are
always optional with defaults.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field

from agents.spec import AgentSpec
from workflows.fsm import FinishReason, State

PREVIEW_CHARS = 160


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            latency_ms=self.latency_ms + other.latency_ms,
        )


class ToolCallRequest(BaseModel):
    """One tool call as the model asked for it; `arguments` is the model's raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"


class ContentNode(BaseModel):
    """One message of a conversation, stored in the artifact store.

    Nodes form a chain through `parent`, so an activity rebuilds the transcript from the
    newest ref alone and the workflow never ships the transcript. The ref is a hash of the
    node, so a node written twice (a retried activity) is stored once.
    """

    kind: State
    parent: str | None
    conversation_id: str
    step: int
    agent_id: str
    text: str | None = None
    tool_calls: list[ToolCallRequest] = []
    tool_call_id: str | None = None
    tool_name: str | None = None
    result_ref: str | None = None

    def ref(self) -> str:
        canonical = self.model_dump_json(exclude_defaults=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class StackEntry(BaseModel):
    """The workflow's small record of one FSM state; the content lives behind `ref`."""

    step: int
    kind: State
    agent_id: str
    ref: str | None = None
    preview: str = ""
    tool_name: str | None = None
    tool_call_id: str | None = None
    status: str | None = None
    reason: FinishReason | None = None
    usage: Usage | None = None


class ConversationInput(BaseModel):
    agent: AgentSpec
    message: str
    model: str | None = Field(default=None, description="overrides the agent's model")


class ConversationStatus(BaseModel):
    conversation_id: str
    agent_id: str
    state: State
    step: int
    usage: Usage
    reason: FinishReason | None = None


class ConversationResult(BaseModel):
    conversation_id: str
    agent_id: str
    reason: FinishReason
    reply_ref: str | None = None
    reply_preview: str = ""
    steps: int
    usage: Usage
    stack: list[StackEntry]


class LlmStepInput(BaseModel):
    conversation_id: str
    agent_id: str
    step: int
    model: str
    head: str
    pending: list[ContentNode] = Field(
        default=[], description="nodes made in the workflow, stored before the call"
    )
    system_prompt: str | None = None
    tools: list[str] = []
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


class LlmStepResult(BaseModel):
    ref: str
    text_preview: str = ""
    tool_calls: list[ToolCallRequest] = []
    usage: Usage
    model: str


class ToolInput(BaseModel):
    conversation_id: str
    agent_id: str
    step: int
    call: ToolCallRequest


class ToolOutcome(BaseModel):
    status: str  # ok | error | timeout
    result_ref: str | None = None
    text: str | None = Field(default=None, description="content kept inline, not stored")
    preview: str = ""
