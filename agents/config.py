"""The agents' sections of the settings (`scripted`, `tools`); runtime/settings.py combines
them with the others."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from p2engine.contract.agent import DedupPolicy


class ScriptedModelSettings(BaseModel):
    """The offline scripted model: latency and usage to make benchmarks and budgets real."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cost_per_1k_tokens: float = Field(default=0.0, ge=0, description="USD, to exercise budgets")


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dedup: DedupPolicy = Field(
        default="penalty", description="repeated side-effecting calls: none | penalty | strict"
    )
