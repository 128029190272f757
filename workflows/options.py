"""Timeouts and retry policies for every activity the conversation workflow calls."""

from __future__ import annotations

from datetime import timedelta
from typing import NotRequired, TypedDict

from temporalio.common import RetryPolicy

from p2engine.contract.models import ToolInfo


class LocalActivityOptions(TypedDict):
    """The keyword arguments of `workflow.execute_local_activity` that a preset sets, typed
    so that `**options` is checked against the SDK's signature."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


class ActivityOptions(LocalActivityOptions):
    """The same for `workflow.execute_activity`, which also takes a heartbeat timeout."""

    heartbeat_timeout: NotRequired[timedelta]


def preset(
    attempt: timedelta,
    total: timedelta,
    attempts: int,
    max_backoff: timedelta,
    heartbeat: timedelta | None = None,
) -> ActivityOptions:
    """`execute_activity` options: each attempt bounded, all attempts bounded, backoff from 1 s."""
    options: ActivityOptions = {
        "start_to_close_timeout": attempt,
        "schedule_to_close_timeout": total,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=max_backoff,
            maximum_attempts=attempts,
        ),
    }
    if heartbeat is not None:
        options["heartbeat_timeout"] = heartbeat
    return options


SECONDS = timedelta(seconds=1)
MINUTES = timedelta(minutes=1)
HOURS = timedelta(hours=1)

# Model calls heartbeat, so a dead worker is noticed after 10 s, not after the 2 min timeout.
LLM_ACTIVITY = preset(2 * MINUTES, 10 * MINUTES, 5, 30 * SECONDS, heartbeat=10 * SECONDS)

# Rules and artifact writes are local and quick; a failure is a bug or a full disk.
LOCAL_ACTIVITY = preset(10 * SECONDS, 1 * MINUTES, 3, 10 * SECONDS)

# Evaluations run beside the conversation; a judge is a model call, so they heartbeat too.
EVAL_ACTIVITY = preset(2 * MINUTES, 10 * MINUTES, 3, 30 * SECONDS, heartbeat=10 * SECONDS)

# Quick evaluations (rules) run as local activities, inside the workflow task: bounded well
# under the task's own timeout, since the task waits for them.
QUICK_EVAL_ACTIVITY: LocalActivityOptions = preset(5 * SECONDS, 30 * SECONDS, 3, 5 * SECONDS)

# Reading what a slim catalog left in the store (CATALOG_BY_REF): a local read of a few KB.
READ_CATALOG_ACTIVITY: LocalActivityOptions = preset(10 * SECONDS, 1 * MINUTES, 3, 10 * SECONDS)

# Ledger commands are idempotent on the transfer id, so an unknown outcome (a timeout) is
# retried with the same id; business errors are non-retryable at the source.
LEDGER_ACTIVITY = preset(15 * SECONDS, 5 * MINUTES, 10, 30 * SECONDS)

# A rollout stores its finished arms' records as a local activity: the batch stays out of
# the history, which keeps only the ref.
STORE_RECORDS_ACTIVITY: LocalActivityOptions = preset(10 * SECONDS, 1 * MINUTES, 3, 10 * SECONDS)

# Settling a rollout reads its records and the ledger and runs the statistics: one long
# call at the end, retried on a worker that died.
SETTLE_ACTIVITY = preset(5 * MINUTES, 30 * MINUTES, 5, 30 * SECONDS, heartbeat=30 * SECONDS)


# Propagation every N steps drives a generation's train rollout from its start to its end,
# reading its arms as it goes: it heartbeats each poll, so a dead worker's part is taken up
# within 30 s, where the arms' own records say how far it had got.
PROPAGATE_ACTIVITY = preset(2 * HOURS, 6 * HOURS, 20, 30 * SECONDS, heartbeat=30 * SECONDS)


def tool_activity(info: ToolInfo) -> ActivityOptions:
    """Per-tool options from the `@tool(timeout=, retry=)` registration."""
    attempt = info.timeout_s * SECONDS
    return preset(attempt, attempt * info.max_attempts + MINUTES, info.max_attempts, 10 * SECONDS)
