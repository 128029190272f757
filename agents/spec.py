"""The typed shape of one agent in config/agents.yml; pure data, safe inside workflows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AgentLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=20, ge=1, description="model and tool steps per conversation")


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    type: Literal["llm"] = "llm"
    description: str = ""
    model: str | None = Field(default=None, description="litellm model string; None: default")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    system_prompt: str | None = None
    tools: list[str] = []
    limits: AgentLimits = AgentLimits()
