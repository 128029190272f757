"""Tracing: the OpenTelemetry provider, exporter and Temporal plugin a process runs with, and
the span file that `p2e trace` reads.

Off by default (`telemetry.exporter: none`): no provider, no plugin, no span. On, the global
provider is temporalio's replay-safe one, so the spans workflow code opens (workflows/
tracing.py) keep their ids across replays and are exported once; the plugin carries the
current span from client to workflow, workflow to activity and parent to child.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import context
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from p2engine.activities.tracing import Spans
from p2engine.contract.errors import ConfigError, InvalidInput
from p2engine.contract.names import SPAN_WORKFLOW_ID
from p2engine.runtime.settings import Settings
from p2engine.workflows import tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider
    from temporalio.plugin import SimplePlugin

TRACER_NAME = "p2engine"
# How long finished spans wait for the exporter's thread: short, so a crash loses little.
EXPORT_DELAY_MS = 500

_provider: ReplaySafeTracerProvider | None = None


def tracing_plugins(settings: Settings) -> list[SimplePlugin]:
    """The Temporal plugins a client needs for the settings' tracing, which workers made on
    it inherit: none when it is off. The first call with tracing on sets the process's
    tracer provider."""
    if not settings.telemetry.on:
        return []
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin
    from temporalio.plugin import SimplePlugin

    _start(settings)
    # After temporalio's plugin, so the mark lands on the context its interceptor attaches.
    return [OpenTelemetryPlugin(), SimplePlugin("p2e-traced-workflows", interceptors=[_Marker()])]


class _Marker(Interceptor):
    """Marks the context of each workflow this worker runs as traced (workflows/tracing.py)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _MarkedWorkflow


class _MarkedWorkflow(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        token = context.attach(tracing.traced_context())
        try:
            return await super().execute_workflow(input)
        finally:
            context.detach(token)


def activity_spans(settings: Settings) -> Spans:
    """What activities trace with; without a tracer when tracing is off."""
    if not settings.telemetry.on:
        return Spans()
    provider = _start(settings)
    return Spans(provider.get_tracer(TRACER_NAME), settings.telemetry.capture_content)


def stop_tracing() -> None:
    """Export what is still queued; for a process about to exit."""
    global _provider
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()
        _provider = None


def _start(settings: Settings) -> ReplaySafeTracerProvider:
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from temporalio.contrib.opentelemetry import create_tracer_provider

    exporter = _exporter(settings)
    provider = create_tracer_provider(resource=Resource.create({"service.name": TRACER_NAME}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def _exporter(settings: Settings) -> SpanExporter:
    kind = settings.telemetry.exporter
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind == "file":
        return JsonLinesSpanExporter(settings.traces_file)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "telemetry.exporter otlp needs the OTLP exporter: pip install 'p2engine[otlp]'"
        ) from None
    exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.telemetry.otlp_endpoint)
    return exporter


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span as one JSON line; a lock per write keeps the lines of the CLI and
    of workers that share a state dir whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}" if context else "",
        "span_id": f"{context.span_id:016x}" if context else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
    }


@dataclass
class TraceSpan:
    """A recorded span and the spans under it, as `p2e trace` shows them."""

    record: dict[str, Any]
    children: list[TraceSpan] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def duration_ms(self) -> float:
        start, end = self.record.get("start_ns"), self.record.get("end_ns")
        return (end - start) / 1e6 if start and end else 0.0

    @property
    def tokens(self) -> tuple[int, int] | None:
        attributes = self.record.get("attributes", {})
        if "gen_ai.usage.input_tokens" not in attributes:
            return None
        return attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]

    def as_json(self) -> dict[str, Any]:
        return {**self.record, "children": [c.as_json() for c in self.children]}


# What every line of a span file has (span_record writes them all).
SPAN_KEYS = frozenset({"trace_id", "span_id", "parent_id", "name"})


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in a span file; a line cut short by a crash is skipped."""
    if not path.is_file():
        raise InvalidInput(f"no span file at {path}: {WHERE_SPANS_COME_FROM}")
    spans, lines_read = [], 0
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                lines_read += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.keys() >= SPAN_KEYS:
                    spans.append(record)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a span file: not UTF-8 text") from None
    if lines_read and not spans:
        raise InvalidInput(f"{path} is not a span file: no line of it is a span")
    return spans


# Spans are written by the process that runs the workflow and its activities: the worker.
WHERE_SPANS_COME_FROM = (
    "spans are written by the worker that runs the conversation, when P2E_OTEL_EXPORTER=file "
    "is set in its environment (`p2e worker`'s, or `p2e run`'s own when no worker is running)"
)


def workflow_of(record: dict[str, Any]) -> str | None:
    found = record.get("attributes", {}).get(SPAN_WORKFLOW_ID)
    return str(found) if found is not None else None


def traces_of(spans: Iterable[dict[str, Any]], workflow_id: str) -> list[TraceSpan]:
    """A workflow's part of the traces it is in, as trees: from its own top spans down,
    with what it delegated under them; an arm's, not its whole rollout's. A span whose
    parent is not in the file (still open, as a waiting conversation's is) stands at the
    top."""
    spans = list(spans)
    trace_ids = {s["trace_id"] for s in spans if workflow_of(s) == workflow_id}
    nodes = {s["span_id"]: TraceSpan(s) for s in spans if s["trace_id"] in trace_ids}
    tops: list[TraceSpan] = []
    for node in nodes.values():
        parent = nodes.get(node.record.get("parent_id") or "")
        if parent is not None:
            parent.children.append(node)
        if workflow_of(node.record) == workflow_id and (
            parent is None or workflow_of(parent.record) != workflow_id
        ):
            tops.append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.record.get("start_ns") or 0)
    return sorted(tops, key=lambda n: n.record.get("start_ns") or 0)
