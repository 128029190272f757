"""Task-queue routing (contract/routing.py): which queue a model step or a tool call goes
to, and the rate-limited queues workers poll."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from p2engine.contract.routing import Routing, model_queue, rate_key, rate_limited_queues


def test_unrouted_everything_stays_on_the_main_queue() -> None:
    routing = Routing()
    assert not routing.routed
    assert model_queue(routing, "openai/gpt-4o", "p2e") is None
    assert rate_limited_queues(routing, "p2e") == {}


def test_a_models_queue_takes_every_model_step() -> None:
    routing = Routing(models="p2e-models")
    assert model_queue(routing, "scripted/default", "p2e") == "p2e-models"


def test_a_provider_with_a_rate_gets_a_queue_of_its_own() -> None:
    routing = Routing(models="p2e-models", model_rates={"openai": 5, "anthropic/claude-x": 1})
    assert model_queue(routing, "openai/gpt-4o", "p2e") == "p2e-models-openai"
    assert model_queue(routing, "anthropic/claude-x", "p2e") == "p2e-models-anthropic/claude-x"
    assert model_queue(routing, "anthropic/other", "p2e") == "p2e-models"
    assert rate_key(routing, "openai") == "openai"  # a bare name is its own provider
    assert rate_limited_queues(routing, "p2e") == {
        "p2e-models-openai": 5,
        "p2e-models-anthropic/claude-x": 1,
    }


def test_without_a_models_queue_a_rate_limited_queue_is_named_after_the_main() -> None:
    routing = Routing(model_rates={"openai": 2.5})
    assert model_queue(routing, "openai/gpt-4o", "p2e") == "p2e-openai"
    assert rate_limited_queues(routing, "p2e") == {"p2e-openai": 2.5}


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_a_rate_must_be_a_positive_number_of_calls_per_second(rate: float) -> None:
    with pytest.raises(ValidationError, match="give calls per second over 0"):
        Routing(model_rates={"openai": rate})
