"""What model calls spent: tokens, cost and time, summed over steps or evaluations."""

from __future__ import annotations

from pydantic import BaseModel, field_validator


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    @field_validator("latency_ms")
    @classmethod
    def _to_the_microsecond(cls, value: float) -> float:
        """A clock read to the microsecond: the digits past it are noise, and every usage is
        written into the history, some many times."""
        return round(value, 3)

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
