"""Spans that workflow code opens: `invoke_agent <agent>` for a conversation, `execute_tool
delegate` around a delegation (so the child's spans hang under the call), and a rollout's.

They are made only in a worker that traces (runtime/telemetry.py marks its workflows'
context with `traced_context`), under temporalio's replay-safe tracer provider: span ids
come from the workflow's own seeded random, so a span reopened on replay keeps its id and is
exported once, by the run that ends it. Anywhere else (by default, and in `p2e replay`)
these are null contexts and no span exists. Spans never change a command, so tracing on or
off replays the same history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from temporalio import workflow

from p2engine.contract.names import SPAN_WORKFLOW_ID as WORKFLOW_ID

with workflow.unsafe.imports_passed_through():
    from opentelemetry import context, trace

_TRACED = "p2e.traced"


def agent_span(agent_id: str, model: str | None) -> AbstractContextManager[None]:
    info = workflow.info()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent_id,
        "gen_ai.agent.id": agent_id,
        "gen_ai.conversation.id": info.workflow_id,
        WORKFLOW_ID: info.workflow_id,
        "p2e.run": info.run_id,
    }
    if model:
        attributes["gen_ai.request.model"] = model
    return _span(f"invoke_agent {agent_id}", attributes)


def delegation_span(call_id: str, target: str, child_id: str) -> AbstractContextManager[None]:
    return _span(
        "execute_tool delegate",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "delegate",
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
            "p2e.delegate.agent": target,
            "p2e.delegate.conversation": child_id,
            WORKFLOW_ID: workflow.info().workflow_id,
        },
    )


def rollout_span(name: str, arms: int) -> AbstractContextManager[None]:
    info = workflow.info()
    return _span(
        f"rollout {name}",
        {"p2e.rollout": name, "p2e.rollout.arms": arms, WORKFLOW_ID: info.workflow_id},
    )


def traced_context() -> context.Context:
    """The current context, marked as that of a workflow whose worker traces."""
    return context.set_value(_TRACED, True)


def _span(name: str, attributes: dict[str, Any]) -> AbstractContextManager[None]:
    if not context.get_value(_TRACED):
        return nullcontext()
    return _open(name, attributes)


@contextmanager
def _open(name: str, attributes: dict[str, Any]) -> Iterator[None]:
    """The span ends however the code inside ends: continue-as-new and cancellation are
    base exceptions that the provider would otherwise leave unended."""
    tracer = trace.get_tracer("p2engine.workflows")
    span = tracer.start_span(name, attributes=attributes, record_exception=False)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield
    except workflow.ContinueAsNewError:
        span.set_attribute("p2e.continued_as_new", True)
        raise
    except BaseException as exc:
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()
