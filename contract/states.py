"""The kinds of entry on a conversation's interaction stack and why a conversation finished:
the vocabulary every layer shares (the transition table is workflows/fsm.py)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """The kinds of entry on a conversation's interaction stack."""

    USER_MESSAGE = "UserMessage"
    ASSISTANT_MESSAGE = "AssistantMessage"
    TOOL_CALL = "ToolCall"
    TOOL_RESULT = "ToolResult"
    AGENT_CALL = "AgentCall"
    AGENT_RESULT = "AgentResult"
    WAITING = "Waiting"
    FINISHED = "Finished"


class FinishReason(StrEnum):
    DONE = "done"
    MAX_STEPS = "max_steps"
    BUDGET = "budget"
    TIMEOUT = "timeout"
    ERROR = "error"
    CANCELLED = "cancelled"
