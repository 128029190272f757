"""What the Temporal SDK logs while `p2e` runs a worker in its own process: one line each on
stderr, never a traceback, and nothing on stdout, which carries only the command's output.
A failed attempt that will be retried is the retry policy at work, not an error to read a
traceback of; `P2E_DEBUG=1` keeps the SDK's own logging, tracebacks included."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

# Set by `p2e`'s entry point: a process of its own, whose logging it may configure (not a
# test or a script that calls the CLI in its own process).
wanted = False
_configured = False


class OneLine(logging.Formatter):
    """`llm_step attempt 2 failed: InternalServerError: ... ` instead of a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        activity: dict[str, Any] = getattr(record, "temporal_activity", None) or {}
        if exc is not None and activity:
            what = f"{activity.get('activity_type')} attempt {activity.get('attempt')} failed"
            return f"  {what}: {_cause(exc)}"[:300]
        text = " ".join(record.getMessage().split())
        if exc is not None:
            text += f": {_cause(exc)}"
        return f"  {record.levelname.lower()}: {text}"[:300]


def _cause(exc: BaseException) -> str:
    """An activity's failure reads as its own type and message (an ApplicationError's
    message names the error it was made from); anything else with its class name."""
    text = " ".join(str(exc).split())
    return text if hasattr(exc, "non_retryable") else f"{type(exc).__name__}: {text}"


def summarise_sdk_logs() -> None:
    """Route the SDK's Python logs, and its core's (which would go to stdout), to stderr as
    one line each; once per process, before the first client connects."""
    global _configured
    if _configured or os.environ.get("P2E_DEBUG"):
        return
    _configured = True
    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    sdk = logging.getLogger("temporalio")
    sdk.addHandler(handler)
    sdk.setLevel(logging.WARNING)
    sdk.propagate = False
    core = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=core
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=logs)), error_if_already_set=False
    )
