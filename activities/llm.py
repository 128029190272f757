"""The model step: rebuild the transcript from the artifact store, call litellm, store the reply.

litellm's own retries are off (`num_retries=0`): Temporal owns retries. Rate limits, server
errors and timeouts are retryable; other 4xx (bad request, auth, context length) are not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import litellm
from litellm._internal_context import is_internal_call
from litellm.exceptions import (
    APIConnectionError,
    ContextWindowExceededError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from p2engine.activities.heartbeat import heartbeating
from p2engine.activities.mcp import McpListings
from p2engine.activities.tracing import NO_SPANS, Spans
from p2engine.activities.transcript import Transcript
from p2engine.agents import scripted_provider
from p2engine.agents.config import ScriptedModelSettings
from p2engine.agents.tools import get_tool
from p2engine.contract.mcp import wire_name
from p2engine.contract.models import StepInput, StepResult, ToolCallRequest
from p2engine.contract.names import LLM_STEP
from p2engine.contract.usage import Usage

# litellm's own overhead per call, none of it needed here: debug banners, and (below) its
# background logging of every call for callbacks nobody registered.
litellm.suppress_debug_info = True

# The longest Retry-After honoured: a model call's attempts all end within 10 minutes.
RETRY_AFTER_MAX = timedelta(minutes=2)

_RETRYABLE_TYPES: tuple[type[Exception], ...] = (
    RateLimitError,
    InternalServerError,
    ServiceUnavailableError,
    APIConnectionError,
    Timeout,
)


def classify_llm_error(exc: Exception) -> ApplicationError:
    """Map a litellm exception onto Temporal's retry decision, keeping its type name."""
    status = getattr(exc, "status_code", None)
    retryable = isinstance(exc, _RETRYABLE_TYPES) or (
        isinstance(status, int) and (status == 429 or status >= 500)
    )
    if isinstance(exc, ContextWindowExceededError):
        retryable = False
    message = " ".join(str(exc).split())[:500]
    return ApplicationError(
        message,
        type=type(exc).__name__,
        non_retryable=not retryable,
        next_retry_delay=retry_after(exc) if retryable else None,
    )


def retry_after(exc: Exception) -> timedelta | None:
    """The wait a provider asked for with a 429's or 503's `Retry-After` (seconds, or an
    HTTP date), at most RETRY_AFTER_MAX: Temporal's next attempt waits that long instead of
    its own backoff, so a fleet of workers does not hammer a provider that said when."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(timedelta(seconds=max(seconds, 0)), RETRY_AFTER_MAX)


def model_problem(model: str) -> str | None:
    """Why litellm could not route a call to `model`, or None; decided offline, no call made."""
    try:
        litellm.get_llm_provider(model)
    except Exception:  # litellm raises its BadRequestError, or a ValueError on odd input
        return (
            f"unknown model {model!r}: litellm knows no provider for it "
            "(write provider/model, e.g. openai/gpt-4o)"
        )
    return None


def missing_keys(model: str) -> list[str]:
    """The API key variables `model`'s provider reads that this process's environment lacks,
    as litellm knows them (offline). Only keys: the other variables litellm lists (an API
    base, a version) have defaults or are not secrets."""
    try:
        found = litellm.validate_environment(model)
    except Exception:  # a provider litellm cannot check: nothing known to be missing
        return []
    return [k for k in found.get("missing_keys", []) if k.endswith("_API_KEY")]


def credentials_problem(model: str) -> str | None:
    """Why a call to `model` from this process would be refused for want of a key, or None."""
    if missing := missing_keys(model):
        return f"{' or '.join(missing)} is not set: {model} needs it"
    return None


def _refuse_without_credentials(model: str) -> None:
    """A missing key fails the step at once, naming the variable: litellm reports it as a
    server error, which would otherwise be retried for as long as the policy allows."""
    if problem := credentials_problem(model):
        raise ApplicationError(
            f"{problem} (in the worker's environment)",
            type="MissingCredentials",
            non_retryable=True,
        )


def _first_choice(response: Any) -> Any:
    """The reply a provider chose; an answer without one is malformed, and asking again
    would not mend it."""
    if not getattr(response, "choices", None):
        raise ApplicationError(
            "the provider answered with no choices", type="MalformedReply", non_retryable=True
        )
    return response.choices[0]


def prompt_price(model: str, text: str) -> float | None:
    """What a call of `model` with `text` as its prompt and a one-token answer costs, from
    litellm's local cost map; None for a model it has no price for."""
    try:
        tokens = litellm.token_counter(model=model, text=text)
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=tokens, completion_tokens=1
        )
    except Exception:  # no price for the model, or a tokenizer it cannot load offline
        return None
    return float(prompt + completion)


@contextmanager
def _no_unused_logging() -> Iterator[None]:
    """With no litellm callback registered, mark the call internal (litellm's own flag for
    its nested calls): litellm then skips the logging task that would build a payload for no
    one and price the call a second time, a third of its time per call. Usage and cost are on
    the response either way; with a callback registered, calls are logged as usual."""
    if any(
        (
            litellm.callbacks,
            litellm.success_callback,
            litellm.failure_callback,
            litellm._async_success_callback,
            litellm._async_failure_callback,
        )
    ):
        yield
        return
    token = is_internal_call.set(True)
    try:
        yield
    finally:
        is_internal_call.reset(token)


async def complete_text(model: str, messages: list[dict[str, str]]) -> tuple[str, Usage]:
    """One plain completion (no tools) through litellm, its errors mapped as a step's are,
    and what it spent: what an LLM judge asks of a model."""
    _refuse_without_credentials(model)
    started = time.perf_counter()
    try:
        with _no_unused_logging():
            response = await litellm.acompletion(model=model, messages=messages, num_retries=0)
    except Exception as exc:
        raise classify_llm_error(exc) from exc
    choice = _first_choice(response)
    usage = _usage(response, (time.perf_counter() - started) * 1000)
    return str(choice.message.content or ""), usage


def _usage(response: Any, latency_ms: float) -> Usage:
    usage = response.usage
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cost_usd=_cost(response),
        latency_ms=latency_ms,
    )


def _cost(response: Any) -> float:
    hidden = getattr(response, "_hidden_params", {}) or {}
    if hidden.get("response_cost") is not None:
        return float(hidden["response_cost"])
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # models without a price (local endpoints, scripted) cost nothing known
        return 0.0


class LlmActivities:
    def __init__(
        self,
        transcript: Transcript,
        scripted: ScriptedModelSettings,
        spans: Spans = NO_SPANS,
        listings: McpListings | None = None,
    ) -> None:
        self.transcript = transcript
        self.spans = spans
        self.listings = listings or McpListings(transcript.store)
        scripted_provider.register(scripted)

    @activity.defn(name=LLM_STEP)
    async def llm_step(self, inp: StepInput) -> StepResult:
        prompt = await self.transcript.prompt(inp)
        config, messages = prompt.config, prompt.messages
        options: dict[str, Any] = {
            k: v
            for k, v in {
                "temperature": config.temperature,
                "top_p": config.top_p,
                "max_tokens": config.max_tokens,
            }.items()
            if v is not None
        }
        schemas = [get_tool(name).schema() for name in config.tools]
        mcp_tools = await self.listings.offered(inp.mcp_listings) if inp.mcp_listings else []
        schemas += [tool.function_schema() for tool in mcp_tools]
        if schemas:
            options["tools"] = schemas
        named = {wire_name(tool.name): tool.name for tool in mcp_tools}
        info = activity.info()
        if info.start_to_close_timeout:
            options["timeout"] = max(1.0, info.start_to_close_timeout.total_seconds() - 1)
        _refuse_without_credentials(inp.model)
        with self.spans.chat(inp.model, options, config.id) as span:
            started = time.perf_counter()
            try:
                with heartbeating(), _no_unused_logging():
                    response = await litellm.acompletion(
                        model=inp.model, messages=messages, num_retries=0, **options
                    )
            except Exception as exc:
                raise classify_llm_error(exc) from exc
            latency_ms = (time.perf_counter() - started) * 1000
            choice = _first_choice(response)
            message = choice.message
            calls = [
                ToolCallRequest(
                    id=c.id,
                    name=named.get(c.function.name, c.function.name),
                    arguments=c.function.arguments or "{}",
                )
                for c in message.tool_calls or []
            ]
            usage = _usage(response, latency_ms)
            if span is not None:
                span.finished(usage, choice.finish_reason, messages, message.content, calls)
        return await self.transcript.reply(inp, message.content, calls, usage, inp.model)
