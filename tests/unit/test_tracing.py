"""Span helpers and the span file, on a tracer provider of the test's own (never the global
one, which would turn tracing on for every workflow in this process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from p2engine.activities.tracing import Spans
from p2engine.contract.errors import InvalidInput
from p2engine.contract.evals import Evaluation, Score
from p2engine.contract.models import ToolCallRequest
from p2engine.contract.usage import Usage
from p2engine.runtime.settings import Settings, TelemetrySettings
from p2engine.runtime.telemetry import (
    JsonLinesSpanExporter,
    activity_spans,
    read_spans,
    traces_of,
    tracing_plugins,
)


def verdict(evaluator: str, **outcome: object) -> Evaluation:
    return Evaluation(target="t", conversation_id="conv-a", step=3, agent_id="a",
                      evaluator_id=evaluator, version="1", **outcome)  # fmt: skip


CALL = ToolCallRequest(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')


def recording(path: Path, capture_content: bool = False) -> Spans:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    return Spans(provider.get_tracer("test"), capture_content)


def test_with_tracing_off_no_plugin_no_tracer_and_no_span(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert tracing_plugins(settings) == []
    spans = activity_spans(settings)
    assert spans.tracer is None
    with (
        spans.chat("scripted/default", {}) as chat,
        spans.tool(CALL) as tool,
        spans.evaluation(1) as evaluation,
    ):
        assert chat is None and tool is None and evaluation is None
        spans.scores(evaluation, [verdict("e")])
    assert not settings.traces_file.exists()


def test_a_chat_span_carries_the_gen_ai_attributes_and_no_content_unless_asked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spans.jsonl"
    for capture in (False, True):
        spans = recording(path, capture)
        options = {"temperature": 0.2, "tools": ["x"], "timeout": 29.0}
        with spans.chat("openai/gpt-4o", options, config="0123456789abcdef") as chat:
            assert chat is not None
            usage = Usage(prompt_tokens=12, completion_tokens=3, cost_usd=0.01)
            chat.finished(usage, "tool_calls", [{"role": "user", "content": "hi"}], None, [CALL])
    plain, captured = read_spans(path)
    assert plain["name"] == "chat openai/gpt-4o"
    assert plain["kind"] == "CLIENT"
    assert plain["attributes"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "openai/gpt-4o",
        "p2e.config": "0123456789abcdef",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.response.finish_reasons": ["tool_calls"],
        "p2e.cost_usd": 0.01,
    }
    assert json.loads(captured["attributes"]["gen_ai.input.messages"]) == [
        {"role": "user", "content": "hi"}
    ]
    assert "get_weather" in captured["attributes"]["gen_ai.output.messages"]


def test_a_failed_tool_and_a_failed_model_call_are_error_spans(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    spans = recording(path)
    with spans.tool(CALL) as tool:
        spans.tool_result(tool, "error", '{"error": "unknown city"}')
    with pytest.raises(RuntimeError), spans.chat("scripted/default", {}):
        raise RuntimeError("model down")
    tool_span, chat_span = read_spans(path)
    assert tool_span["status"] == "ERROR"
    assert "gen_ai.tool.call.result" not in tool_span["attributes"]
    assert tool_span["attributes"]["gen_ai.tool.call.id"] == "call_1"
    assert chat_span["status"] == "ERROR"
    assert chat_span["events"][0]["name"] == "exception"


def test_scores_are_evaluation_result_events_on_one_span(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    records = [
        verdict("default", score=Score(value=0.75)),
        verdict("judge", error="no model"),
    ]
    spans = recording(path)
    with spans.evaluation(3) as evaluation:
        spans.scores(evaluation, records)
    (span,) = read_spans(path)
    assert span["name"] == "evaluate step 3"
    assert [e["name"] for e in span["events"]] == ["gen_ai.evaluation.result"] * 2
    assert span["events"][0]["attributes"] == {
        "gen_ai.evaluation.name": "default",
        "gen_ai.evaluation.score.value": 0.75,
    }
    assert span["events"][1]["attributes"]["error.type"] == "no model"


def _span(
    span_id: str, parent: str | None, start: int, wid: str = "", trace: str = "t1"
) -> dict[str, Any]:
    attributes = {"p2e.workflow_id": wid} if wid else {}
    return {"trace_id": trace, "span_id": span_id, "parent_id": parent, "name": span_id,
            "start_ns": start, "end_ns": start + 10, "attributes": attributes}  # fmt: skip


def test_a_workflow_shows_its_own_part_of_its_trace_ordered_by_start() -> None:
    spans = [
        _span("child-call", "root", 30, "conv-a/d2-b"),
        _span("child-tool", "child-call", 35, "conv-a/d2-b"),
        _span("root", None, 10, "conv-a"),
        _span("first", "root", 20),
        _span("elsewhere", None, 5, "conv-z", trace="t2"),
    ]
    (by_child,) = traces_of(spans, "conv-a/d2-b")
    (by_root,) = traces_of(spans, "conv-a")
    assert by_root.name == "root"
    assert [c.name for c in by_root.children] == ["first", "child-call"]
    # A child (or a rollout's arm) shows from its own top span down, not the whole trace.
    assert by_child.name == "child-call" and [c.name for c in by_child.children] == ["child-tool"]
    assert traces_of(spans, "conv-nobody") == []


def test_a_span_whose_parent_is_still_open_stands_at_the_top() -> None:
    spans = [_span("model", "open-agent-span", 20, "conv-a"), _span("tool", "model", 25)]
    (top,) = traces_of(spans, "conv-a")
    assert top.name == "model" and [c.name for c in top.children] == ["tool"]


def test_a_line_cut_short_by_a_crash_is_skipped_and_a_missing_file_is_one_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(_span("whole", None, 1)) + '\n{"trace_id": "t1", "spa')
    assert [s["span_id"] for s in read_spans(path)] == ["whole"]
    with pytest.raises(InvalidInput, match=r"no span file at .*P2E_OTEL_EXPORTER=file"):
        read_spans(tmp_path / "none.jsonl")


def test_the_telemetry_settings_default_to_off() -> None:
    assert TelemetrySettings().exporter == "none"
    assert TelemetrySettings().capture_content is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[1, 2]\n{"a": 1}\n', "no line of it is a span"),
        ("just some words\n", "no line of it is a span"),
        (b"\xff\xfe\x00".decode("latin-1"), "not UTF-8 text"),
    ],
    ids=["json-but-no-spans", "not-json", "not-utf8"],
)
def test_a_file_that_is_no_span_file_is_one_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InvalidInput, match=f"other.jsonl is not a span file: {problem}"):
        read_spans(path)
