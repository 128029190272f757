"""Mapping litellm errors onto Temporal retry decisions (activities/llm.py), including the
full path through litellm with the offline scripted provider."""

from __future__ import annotations

from typing import Any

import litellm
import pytest
from litellm import exceptions as llm_exc
from temporalio.exceptions import ApplicationError

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from p2engine.activities.llm import classify_llm_error
from p2engine.agents import scripted_provider
from p2engine.agents.config import ScriptedModelSettings

RETRYABLE: list[type[Exception]] = [
    llm_exc.RateLimitError,
    llm_exc.InternalServerError,
    llm_exc.ServiceUnavailableError,
    llm_exc.APIConnectionError,
    llm_exc.Timeout,
    llm_exc.BadGatewayError,
]
NON_RETRYABLE: list[type[Exception]] = [
    llm_exc.AuthenticationError,
    llm_exc.BadRequestError,
    llm_exc.NotFoundError,
    llm_exc.ContextWindowExceededError,
]


def make(cls: type[Exception]) -> Exception:
    factory: Any = cls
    exc: Exception = factory(message="x", llm_provider="openai", model="m")
    return exc


@pytest.mark.parametrize("cls", RETRYABLE, ids=lambda c: c.__name__)
def test_retryable_errors(cls: type[Exception]) -> None:
    error = classify_llm_error(make(cls))
    assert isinstance(error, ApplicationError)
    assert error.non_retryable is False
    assert error.type == cls.__name__
    assert cls.__name__ in error.message


@pytest.mark.parametrize("cls", NON_RETRYABLE, ids=lambda c: c.__name__)
def test_non_retryable_errors(cls: type[Exception]) -> None:
    error = classify_llm_error(make(cls))
    assert isinstance(error, ApplicationError)
    assert error.non_retryable is True
    assert error.type == cls.__name__
    assert cls.__name__ in error.message


def test_message_is_flattened_and_capped() -> None:
    exc = llm_exc.BadRequestError(
        message="line one\n\nline two " + "y" * 2000, model="m", llm_provider="openai"
    )
    error = classify_llm_error(exc)
    assert "\n" in str(exc)
    assert "\n" not in error.message
    assert "line one line two" in error.message
    assert len(error.message) <= len("BadRequestError: ") + 500


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (503, True), (400, False), (401, False), (404, False)],
)
def test_unknown_exception_types_fall_back_to_status_code(status: int, retryable: bool) -> None:
    error = classify_llm_error(_StatusError(status))
    assert error.non_retryable is (not retryable)
    assert error.type == "_StatusError"


# --- through litellm with the scripted provider ------------------------------------------------


async def complete(text: str) -> Any:
    return await litellm.acompletion(
        model="scripted/default",
        messages=[{"role": "user", "content": text}],
        num_retries=0,
    )


@pytest.mark.usefixtures("scripted")
async def test_scripted_429_is_a_retryable_rate_limit() -> None:
    with pytest.raises(llm_exc.RateLimitError) as info:
        await complete("simulate error 429")
    error = classify_llm_error(info.value)
    assert error.non_retryable is False
    assert error.type == "RateLimitError"


@pytest.mark.usefixtures("scripted")
async def test_scripted_401_is_non_retryable() -> None:
    with pytest.raises(llm_exc.AuthenticationError) as info:
        await complete("simulate error 401")
    error = classify_llm_error(info.value)
    assert error.non_retryable is True
    assert error.type == "AuthenticationError"


@pytest.mark.usefixtures("scripted")
async def test_scripted_500_is_retryable() -> None:
    with pytest.raises(Exception) as info:
        await complete("simulate error 500")
    assert classify_llm_error(info.value).non_retryable is False


@pytest.mark.usefixtures("scripted")
async def test_scripted_call_reports_estimated_usage() -> None:
    response = await complete("hello")
    assert response.choices[0].message.content.startswith("Hello")
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


@pytest.mark.usefixtures("scripted")
async def test_scripted_usage_can_be_fixed_by_settings() -> None:
    scripted_provider.register(ScriptedModelSettings(prompt_tokens=100, completion_tokens=7))
    response = await complete("hello")
    assert response.usage.prompt_tokens == 100
    assert response.usage.completion_tokens == 7
    assert response.usage.total_tokens == 107


@pytest.mark.usefixtures("scripted")
async def test_scripted_tool_call_goes_through_litellm() -> None:
    response = await litellm.acompletion(
        model="scripted/default",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        num_retries=0,
    )
    message = response.choices[0].message
    assert message.content is None
    assert len(message.tool_calls) == 1
    assert message.tool_calls[0].function.name == "get_weather"
    assert message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert response.choices[0].finish_reason == "tool_calls"
