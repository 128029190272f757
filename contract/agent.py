"""The typed shape of one agent in config/agents.yml; pure data, safe inside workflows."""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from p2engine.contract.mcp import McpServer

AgentType = Literal["llm", "rule_based", "human"]
DedupPolicy = Literal["none", "penalty", "strict"]
DelegationContext = Literal["message", "history"]


# The model of an llm agent that names none, unless the settings name another.
DEFAULT_MODEL = "scripted/default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentLimits(_Strict):
    """How far one conversation of an agent may go: steps, spend and delegation depth."""

    max_steps: int = Field(default=20, ge=1, description="model and tool steps per conversation")
    max_cost: float | None = Field(
        default=None, ge=0, description="USD, children included; None: no budget"
    )
    max_delegation_depth: int = Field(
        default=3,
        ge=0,
        description="the longest delegation chain, counted from the root conversation, "
        "that this agent may extend by delegating",
    )


class Rule(_Strict):
    """One rule of a rule_based agent: a match (contains or regex) and a reply or a tool call.

    After the tool answers, the agent replies with `reply`, where `$result` is the tool's
    output; without `reply` it reports the output as it is.
    """

    contains: str | None = Field(default=None, min_length=1, description="case-insensitive")
    regex: str | None = Field(default=None, min_length=1)
    reply: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.contains is None) == (self.regex is None):
            raise ValueError("a rule needs exactly one of 'contains' or 'regex'")
        if self.reply is None and self.tool is None:
            raise ValueError("a rule needs a 'reply', a 'tool' or both")
        if self.arguments and self.tool is None:
            raise ValueError("'arguments' needs a 'tool'")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from None
        return self

    def matches(self, text: str) -> bool:
        if self.contains is not None:
            return self.contains.casefold() in text.casefold()
        return re.search(self.regex or "", text) is not None


class AgentEval(_Strict):
    """How the agent's work is scored: evaluator ids from `p2e eval list`, each scoring what
    its trigger says (steps, tool results or final answers)."""

    evaluators: list[str] = Field(min_length=1)


class AgentSpec(_Strict):
    """One agent as agents.yml spells it: its model and prompt, tools, persona, limits,
    evaluations and, for a rule-based agent, its rules."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    type: AgentType = "llm"
    description: str = ""
    model: str | None = Field(default=None, description="litellm model string; None: default")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    system_prompt: str | None = None
    persona: str | None = Field(default=None, description="a template in config/personas/")
    tools: list[str] = Field(default=[], description="the tools this agent may call")
    mcp: list[str] = Field(
        default=[], description="MCP servers ('time') or their tools ('time.convert_time')"
    )
    mcp_servers: dict[str, McpServer] = Field(
        default={}, description="MCP servers of this agent's own, beside the settings' ones"
    )
    limits: AgentLimits = AgentLimits()
    dedup: DedupPolicy | None = Field(default=None, description="None: the global default")
    delegation_context: DelegationContext = Field(
        default="message",
        description="what a delegated child sees: the message only, or this conversation too",
    )
    rules: list[Rule] = Field(default=[], description="rule_based agents: first match wins")
    fallback_reply: str = "I have no rule for that."
    human_timeout_s: float = Field(
        default=86400, gt=0, description="human agents: how long a turn waits for an answer"
    )
    eval: AgentEval | None = None

    @model_validator(mode="after")
    def _check_type(self) -> Self:
        if self.type == "rule_based" and not self.rules:
            raise ValueError("a rule_based agent needs at least one rule")
        if self.type != "rule_based" and self.rules:
            raise ValueError(f"'rules' apply to rule_based agents, not {self.type}")
        return self

    def rule_tools(self) -> set[str]:
        return {rule.tool for rule in self.rules if rule.tool}
