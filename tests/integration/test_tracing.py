"""Traces as a user records them: `p2e run` with the file exporter on, its span file read
back, `p2e trace` on it, and the same run with tracing off leaving no span behind."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import p2e
from tests.integration.test_ledger_cli import own_ledger

__all__ = ["own_ledger"]  # the fixture: a state dir of its own with an opened ledger

P2E = str(Path(sys.executable).parent / "p2e")
DELEGATION = "delegate to agent_helper: the weather in Paris"


def traced_env(cli_env: dict[str, str], state: Path, **extra: str) -> dict[str, str]:
    return {**cli_env, "P2E_STATE_DIR": str(state), "P2E_OTEL_EXPORTER": "file", **extra}


def spans_in(state: Path) -> list[dict[str, Any]]:
    lines = (state / "traces.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def only(spans: list[dict[str, Any]], name: str, **attributes: Any) -> dict[str, Any]:
    found = [
        s
        for s in spans
        if s["name"] == name and all(s["attributes"].get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [s["name"] for s in spans])
    return found[0]


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[str]:
    under = [s for s in spans if s["parent_id"] == parent["span_id"]]
    return [s["name"] for s in sorted(under, key=lambda s: s["start_ns"])]


def test_a_delegation_conversation_is_one_trace_with_the_child_under_the_call(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"traced-{uuid.uuid4().hex[:8]}"
    done = p2e("run", "--id", name, DELEGATION, env=traced_env(cli_env, tmp_path))
    assert done.returncode == 0, done.stderr
    spans = spans_in(tmp_path)

    assert len({s["trace_id"] for s in spans}) == 1
    assert Counter(s["span_id"] for s in spans).most_common(1)[0][1] == 1  # each span once
    root = only(spans, "invoke_agent agent_alpha")
    assert root["parent_id"] is None
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["gen_ai.conversation.id"] == f"conv-{name}"
    assert children(spans, root) == [
        "chat scripted/default", "execute_tool delegate", "chat scripted/default",
    ]  # fmt: skip

    call = only(spans, "execute_tool delegate")
    assert call["attributes"]["gen_ai.tool.call.id"]
    assert call["attributes"]["p2e.delegate.agent"] == "agent_helper"
    child = only(spans, "invoke_agent agent_helper")
    assert child["parent_id"] == call["span_id"]
    assert child["attributes"]["gen_ai.conversation.id"].startswith(f"conv-{name}/d")
    assert children(spans, child) == [
        "chat scripted/default", "execute_tool get_weather", "chat scripted/default",
    ]  # fmt: skip

    tool = only(spans, "execute_tool get_weather")
    assert tool["attributes"]["gen_ai.tool.name"] == "get_weather"
    assert tool["attributes"]["gen_ai.tool.call.id"]
    for chat in (s for s in spans if s["name"].startswith("chat ")):
        attributes = chat["attributes"]
        assert attributes["gen_ai.request.model"] == "scripted/default"
        assert re.fullmatch(r"[0-9a-f]{16}", attributes["p2e.config"])  # the config it ran
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"]
        assert "gen_ai.input.messages" not in attributes  # content only when asked for
    assert all(s["end_ns"] >= s["start_ns"] > 0 for s in spans)

    shown = p2e("trace", name, env=traced_env(cli_env, tmp_path))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("invoke_agent agent_alpha · ")
    assert any("execute_tool delegate" in line for line in lines)
    assert any("invoke_agent agent_helper" in line and "│" in line for line in lines)
    assert any(" in / " in line and "out tokens" in line for line in lines)

    as_json = json.loads(p2e("trace", name, "--json", env=traced_env(cli_env, tmp_path)).stdout)
    assert [t["name"] for t in as_json] == ["invoke_agent agent_alpha"]
    delegation = next(c for c in as_json[0]["children"] if c["name"] == "execute_tool delegate")
    assert [c["name"] for c in delegation["children"]] == ["invoke_agent agent_helper"]
    child = delegation["children"][0]["attributes"]["p2e.workflow_id"]
    assert any(f"invoke_agent agent_helper · {child} · " in line for line in lines)

    # A child's trace is its own part: from its top span down, not its parent's.
    by_child = p2e("trace", child, env=traced_env(cli_env, tmp_path))
    assert by_child.returncode == 0, by_child.stderr
    assert by_child.stdout.startswith(f"invoke_agent agent_helper · {child} · ")
    assert "invoke_agent agent_alpha" not in by_child.stdout


def test_content_scores_and_transfers_are_on_the_trace_when_asked_for(
    own_ledger: dict[str, str],
) -> None:
    state = Path(own_ledger["P2E_STATE_DIR"])
    env = traced_env(own_ledger, state, P2E_OTEL_CAPTURE_CONTENT="true")
    pay = 'call transfer_funds with {"to_agent": "agent_beta", "amount": 2}'
    name = f"paid-{uuid.uuid4().hex[:8]}"
    done = p2e("run", "--id", name, "--eval", "default", pay, env=env)
    assert done.returncode == 0, done.stderr
    spans = spans_in(state)

    first_chat = min(
        (s for s in spans if s["name"].startswith("chat ")), key=lambda s: s["start_ns"]
    )
    assert "transfer_funds" in first_chat["attributes"]["gen_ai.input.messages"]
    tool = only(spans, "execute_tool transfer_funds")
    assert '"amount": 2' in tool["attributes"]["gen_ai.tool.call.arguments"]
    transfer = only(spans, "ledger transfer")
    assert transfer["parent_id"] == tool["span_id"]
    assert f"conv-{name}/" in transfer["attributes"]["p2e.transfer.id"]  # the business key
    assert transfer["attributes"]["p2e.transfer.amount"] == "2"
    scores = [
        e["attributes"]
        for s in spans
        if s["name"].startswith("evaluate step ")
        for e in s["events"]
        if e["name"] == "gen_ai.evaluation.result"
    ]
    assert scores and all(a["gen_ai.evaluation.name"] == "default" for a in scores)
    assert all(0 <= a["gen_ai.evaluation.score.value"] <= 1 for a in scores)
    # The judge's own model calls are chat spans under the evaluation they serve.
    evaluations = {s["span_id"] for s in spans if s["name"].startswith("evaluate step ")}
    judged = [s for s in spans if s["name"] == "chat scripted/judge"]
    assert judged and all(s["parent_id"] in evaluations for s in judged)
    assert all(s["attributes"]["gen_ai.usage.input_tokens"] > 0 for s in judged)


def test_replaying_a_traced_run_exports_no_span_again(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"replayed-{uuid.uuid4().hex[:8]}"
    env = traced_env(cli_env, tmp_path)
    assert p2e("run", "--id", name, DELEGATION, env=env).returncode == 0
    recorded = len(spans_in(tmp_path))

    replayed = p2e("replay", f"conv-{name}", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert len(spans_in(tmp_path)) == recorded


def test_with_the_exporter_off_no_span_is_made(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    done = p2e("run", "--id", f"untraced-{uuid.uuid4().hex[:8]}", DELEGATION, env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "traces.jsonl").exists()

    missing = p2e("trace", "conv-anything", env=env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no span file at ")
    assert "P2E_OTEL_EXPORTER=file" in missing.stderr


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("P2E_OTEL_EXPORTER", "jaeger", "telemetry.exporter"),
        ("P2E_OTEL_CAPTURE_CONTENT", "perhaps", "telemetry.capture_content"),
    ],
)
def test_a_bad_telemetry_setting_is_one_line(
    cli_env: dict[str, str], setting: str, value: str, problem: str
) -> None:
    done = p2e("run", "hello", env={**cli_env, setting: value})
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {setting}: setting '{problem}': ")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter") is not None,
    reason="the otlp extra is installed here",
)
def test_the_otlp_exporter_without_its_extra_says_what_to_install(
    cli_env: dict[str, str],
) -> None:
    done = p2e("run", "hello", env={**cli_env, "P2E_OTEL_EXPORTER": "otlp"})
    assert done.returncode == 2
    assert done.stderr == (
        "error: telemetry.exporter otlp needs the OTLP exporter: pip install 'p2engine[otlp]'\n"
    )


def test_tracing_set_for_run_but_not_for_the_standing_worker_is_pointed_out(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    worker = subprocess.Popen(
        [P2E, "worker"], env={**cli_env, "P2E_STATE_DIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None and "worker ready" in worker.stdout.readline()
        name = f"worker-untraced-{uuid.uuid4().hex[:8]}"
        done = p2e("run", "--id", name, "weather in Paris", env=traced_env(cli_env, tmp_path))
        assert done.returncode == 0, done.stderr
        assert "spans are written only if P2E_OTEL_EXPORTER is set in the worker's" in done.stderr
        missing = p2e("trace", name, env=traced_env(cli_env, tmp_path))
        assert missing.returncode == 2
        assert "written by the worker that runs the conversation" in missing.stderr
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)
