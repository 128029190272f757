"""Spans from activities, named and attributed by the OpenTelemetry GenAI semantic conventions
(`chat <model>`, `execute_tool <tool>`, `gen_ai.evaluation.result` events) plus ledger
transfers. With tracing off the tracer is None and every helper returns before building an
attribute: no span exists, so nothing is paid for it.

Each span hangs from the context Temporal's tracing interceptor carried in from the workflow
that scheduled the activity, so a conversation's model and tool calls sit under its own span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from temporalio import activity

from p2engine.contract.names import SPAN_WORKFLOW_ID as WORKFLOW_ID

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from p2engine.contract.evals import Evaluation
    from p2engine.contract.models import ToolCallRequest
    from p2engine.contract.usage import Usage
    from p2engine.ledger.base import Ledger
    from p2engine.ledger.models import Receipt, TransferKind


# A model call's options that the conventions name (`gen_ai.request.<option>`).
REQUEST_OPTIONS = ("temperature", "top_p", "max_tokens")


@dataclass(frozen=True)
class Spans:
    """What a worker's activities trace with, made by the runtime from its settings."""

    tracer: Tracer | None = None
    capture_content: bool = False

    @contextmanager
    def chat(
        self, model: str, options: dict[str, Any], config: str = ""
    ) -> Iterator[ChatSpan | None]:
        """One model call: `chat <model>`, finished with usage and finish reasons; `config`
        is the id of the agent config the step ran (contract/agent_config.py)."""
        if self.tracer is None:
            yield None
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            **{f"gen_ai.request.{k}": v for k, v in options.items() if k in REQUEST_OPTIONS},
            **_activity_attributes(),
        }
        if config:
            attributes["p2e.config"] = config
        if "/" in model:  # litellm's provider/model; a bare name leaves the provider unsaid
            attributes["gen_ai.provider.name"] = model.split("/", 1)[0]
        with self.tracer.start_as_current_span(
            f"chat {model}", kind=_client_kind(), attributes=attributes
        ) as span:
            yield ChatSpan(span, self.capture_content)

    @contextmanager
    def tool(self, call: ToolCallRequest) -> Iterator[Span | None]:
        """One tool call: `execute_tool <name>`; the result is added with `tool_result`."""
        if self.tracer is None:
            yield None
            return
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
            **_activity_attributes(),
        }
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = call.arguments
        with self.tracer.start_as_current_span(
            f"execute_tool {call.name}", attributes=attributes
        ) as span:
            yield span

    def tool_result(self, span: Span | None, status: str, text: str) -> None:
        if span is None:
            return
        span.set_attribute("p2e.tool.status", status)
        if self.capture_content:
            span.set_attribute("gen_ai.tool.call.result", text)
        if status != "ok":
            _set_error(span, f"tool {status}")

    @contextmanager
    def transfer(self, transfer_id: str, kind: str, amount: str) -> Iterator[None]:
        """A ledger transfer, by the business key it is unique on."""
        if self.tracer is None:
            yield
            return
        attributes = {
            "p2e.transfer.id": transfer_id,
            "p2e.transfer.kind": kind,
            "p2e.transfer.amount": amount,
            **_activity_attributes(),
        }
        with self.tracer.start_as_current_span(f"ledger {kind}", attributes=attributes):
            yield

    @contextmanager
    def evaluation(self, step: int) -> Iterator[Span | None]:
        """The evaluation of one step; its scores are added with `scores`."""
        if self.tracer is None:
            yield None
            return
        attributes = {"p2e.step": step, **_activity_attributes()}
        with self.tracer.start_as_current_span(
            f"evaluate step {step}", attributes=attributes
        ) as span:
            yield span

    def scores(self, span: Span | None, records: Sequence[Evaluation]) -> None:
        """Each verdict as a `gen_ai.evaluation.result` event."""
        if span is None:
            return
        for record in records:
            event: dict[str, Any] = {"gen_ai.evaluation.name": record.evaluator_id}
            if record.score is not None:
                event["gen_ai.evaluation.score.value"] = record.score.value
                if self.capture_content and record.score.rationale:
                    event["gen_ai.evaluation.explanation"] = record.score.rationale
            if record.error:
                event["error.type"] = record.error
            span.add_event("gen_ai.evaluation.result", event)


class TracedLedger:
    """The ledger as a tracing worker's activities see it: each transfer a span of its own."""

    def __init__(self, ledger: Ledger, spans: Spans) -> None:
        self._ledger = ledger
        self._spans = spans

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    async def transfer(
        self,
        transfer_id: str,
        payer: str,
        payee: str,
        amount: Decimal,
        reason: str = "",
        reference: str = "",
        kind: TransferKind = "transfer",
    ) -> Receipt:
        with self._spans.transfer(transfer_id, kind, str(amount)):
            return await self._ledger.transfer(
                transfer_id, payer, payee, amount, reason=reason, reference=reference, kind=kind
            )


def traced(ledger: Ledger, spans: Spans) -> Ledger:
    return ledger if spans.tracer is None else cast("Ledger", TracedLedger(ledger, spans))


NO_SPANS = Spans()


@dataclass(frozen=True)
class ChatSpan:
    span: Span
    capture_content: bool

    def finished(
        self,
        usage: Usage,
        finish_reason: str | None,
        prompt: list[dict[str, Any]],
        reply: str | None,
        calls: Sequence[ToolCallRequest],
    ) -> None:
        self.span.set_attributes(
            {
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "gen_ai.response.finish_reasons": [finish_reason or "stop"],
                "p2e.cost_usd": usage.cost_usd,
            }
        )
        if self.capture_content:
            output = {"role": "assistant", "content": reply, "tool_calls": [c.name for c in calls]}
            self.span.set_attributes(
                {
                    "gen_ai.input.messages": json.dumps(prompt, default=str),
                    "gen_ai.output.messages": json.dumps([output]),
                }
            )


def _activity_attributes() -> dict[str, Any]:
    if not activity.in_activity():
        return {}
    info = activity.info()
    return {WORKFLOW_ID: info.workflow_id or "", "gen_ai.conversation.id": info.workflow_id or ""}


def _client_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT


def _set_error(span: Span, description: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, description))
