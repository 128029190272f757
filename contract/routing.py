"""Which task queue each kind of activity goes to, so a fleet can run model-only and
tool-only worker pools, and a provider's calls can be rate-limited across every worker.

Unset, everything runs on the conversation's own task queue, as one `p2e worker` serves it.
A provider (the text of a model name before its first '/', e.g. `openai`) or a whole model
name with a rate gets a queue of its own, `<models queue>-<key>`, whose workers poll with
Temporal's task-queue rate limit (`max_task_queue_activities_per_second`): the server hands
out at most that many of its tasks per second, however many workers poll it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: str | None = Field(default=None, description="model steps' queue; None: the main")
    tools: str | None = Field(default=None, description="tool calls' queue; None: the main")
    model_rates: dict[str, float] = Field(
        default={}, description="provider or model -> calls per second, across all workers"
    )

    @field_validator("model_rates")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        for key, rate in rates.items():
            if not rate > 0 or rate == float("inf"):
                raise ValueError(f"the rate of '{key}' is {rate}; give calls per second over 0")
        return rates

    @property
    def routed(self) -> bool:
        return bool(self.models or self.tools or self.model_rates)


def rate_key(routing: Routing, model: str) -> str | None:
    """The key of `model`'s rate limit: the model itself, else its provider prefix."""
    if model in routing.model_rates:
        return model
    provider = model.partition("/")[0]
    return provider if provider in routing.model_rates else None


def model_queue(routing: Routing, model: str, main: str) -> str | None:
    """The queue a step on `model` goes to; None: the conversation's own (`main`)."""
    key = rate_key(routing, model)
    if key is not None:
        return f"{routing.models or main}-{key}"
    return routing.models


def rate_limited_queues(routing: Routing, main: str) -> dict[str, float]:
    """Each rate-limited model queue and its calls per second, as workers poll them."""
    return {f"{routing.models or main}-{key}": rate for key, rate in routing.model_rates.items()}
