"""Timeouts and retry policies for every activity the conversation workflow calls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from workflows.models import ToolInfo

# Model calls heartbeat, so a dead worker is noticed after 10 s, not after the 2 min timeout.
LLM_ACTIVITY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
}

# Rules and artifact writes are local and quick; a failure is a bug or a full disk.
LOCAL_ACTIVITY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
    ),
}


def tool_activity(info: ToolInfo) -> dict[str, Any]:
    """Per-tool options from the `@tool(timeout=, retry=)` registration."""
    timeout = timedelta(seconds=info.timeout_s)
    return {
        "start_to_close_timeout": timeout,
        "schedule_to_close_timeout": timeout * info.max_attempts + timedelta(minutes=1),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=info.max_attempts,
        ),
    }


# Ledger commands are idempotent on the transfer id, so an unknown outcome (a timeout) is
# retried with the same id; business errors are non-retryable at the source.
LEDGER_ACTIVITY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "schedule_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=10,
    ),
}
