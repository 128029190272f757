"""`p2e replay` on downloaded histories: the golden ones replay, a changed workflow is
named at the event it no longer matches, and bad input is one line with exit 2."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ChildWorkflowError

import p2engine.runtime.replay as replay_module
from p2engine.cli.main import _run
from tests.replay.changed import CallsTheToolFirst

GOLDEN = Path(__file__).parent.parent / "golden"


def p2e(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["p2e", *args])
    code = _run()
    out, err = capsys.readouterr()
    return code, out, err


def test_a_golden_history_replays_and_shows_its_stack_at_a_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = p2e(
        monkeypatch,
        capsys,
        "replay",
        "--history",
        str(GOLDEN / "delegation.json"),
        "--step",
        "2",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert (data["workflow_id"], data["replays"]) == ("conv-golden-delegation", True)
    assert (data["at"]["state"], data["at"]["step"]) == ("AgentResult", 2)
    assert [e["kind"] for e in data["at"]["stack"]] == ["UserMessage", "AgentCall", "AgentResult"]


def test_a_changed_workflow_does_not_replay_and_the_event_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(replay_module, "WORKFLOWS", [CallsTheToolFirst])
    code, out, _ = p2e(monkeypatch, capsys, "replay", "--history", str(GOLDEN / "tool_call.json"))
    assert code == 1
    assert out.startswith("conv-golden-tool_call: does not replay at event 5: Nondeterminism error")


def test_an_event_before_the_end_shows_the_run_as_it_was_then(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = p2e(
        monkeypatch,
        capsys,
        "replay",
        "--history",
        str(GOLDEN / "tool_call.json"),
        "--until-event",
        "9",
        "--json",
    )
    assert code == 0
    at = json.loads(out)["at"]
    assert [e["kind"] for e in at["stack"]] == ["UserMessage", "ToolCall"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((), "name one workflow id, or --history FILE, or --query QUERY"),
        (("--history", "/nonexistent.json"), "/nonexistent.json: no such file"),
        (
            ("--history", str(GOLDEN / "tool_call.json"), "--step", "1", "--until-event", "3"),
            "give one",
        ),
        (("--history", str(GOLDEN / "tool_call.json"), "--step", "9"), "step 9 was never reached"),
        (
            ("--history", str(GOLDEN / "tool_call.json"), "--until-event", "0"),
            "--until-event must be 1 to",
        ),
        (("--query", "x", "--step", "1"), "not with --query"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    problem: str,
) -> None:
    code, out, err = p2e(monkeypatch, capsys, "replay", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and problem in err and err.count("\n") == 1


def test_a_file_that_is_no_history_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for text, problem in (
        ("{", "not a JSON history"),
        ('{"events": []}', "no history events"),
        ('[{"eventId": "x"}]', "not a workflow history"),
    ):
        (tmp_path / "h.json").write_text(text)
        code, _, err = p2e(monkeypatch, capsys, "replay", "--history", str(tmp_path / "h.json"))
        assert code == 2 and problem in err, err


def _damaged(tmp_path: Path, damage: Callable[[list[dict[str, Any]]], None]) -> Path:
    events = json.loads((GOLDEN / "tool_call.json").read_text())["events"]
    damage(events)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps({"events": events}))
    return path


def _junk_event(events: list[dict[str, Any]]) -> None:
    events.insert(5, {"eventId": "6", "eventType": "EVENT_TYPE_UNSPECIFIED"})
    for number, event in enumerate(events, start=1):
        event["eventId"] = str(number)


def _renamed(events: list[dict[str, Any]]) -> None:
    events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = "Mystery"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_junk_event, "event 6 has no type or no attributes"),
        (lambda events: events.pop(0), "the history does not begin with the workflow's start"),
        (lambda events: events.pop(7), "event 8 is numbered 9; events are missing"),
        (_renamed, "a Mystery workflow; p2e replays " + ", ".join(replay_module.WORKFLOW_NAMES)),
    ],
    ids=["junk-event", "no-start", "gap", "unknown-type"],
)
def test_a_damaged_history_is_refused_before_the_replayer_sees_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    damage: Callable[[list[dict[str, Any]]], None],
    problem: str,
) -> None:
    path = _damaged(tmp_path, damage)
    code, out, err = p2e(monkeypatch, capsys, "replay", "--history", str(path))
    assert (code, out, err) == (2, "", f"error: {path}: {problem}\n")


def test_a_start_that_does_not_decode_is_a_verdict_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def garble(events: list[dict[str, Any]]) -> None:
        start = events[0]["workflowExecutionStartedEventAttributes"]
        start["input"]["payloads"][0]["data"] = "bm90IGpzb24="  # "not json"

    path = _damaged(tmp_path, garble)
    code, out, err = p2e(monkeypatch, capsys, "replay", "--history", str(path))
    assert code == 1 and err == ""
    assert out == "conv-golden-tool_call: does not replay: Failed decoding arguments\n"


def test_a_replayed_runs_logged_exceptions_are_kept_out_only_while_replaying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("temporalio.worker._workflow_instance")
    failure = ChildWorkflowError("cancelled", namespace="n", workflow_id="w", run_id="r",
                                 workflow_type="t", initiated_event_id=1, started_event_id=2,
                                 retry_state=None)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        with replay_module.failures_in_the_verdict_only():
            log.error("exception was never retrieved", exc_info=failure)
            log.warning("a warning without an exception")
        log.error("outside a replay", exc_info=failure)
    assert [r.getMessage() for r in caplog.records] == [
        "a warning without an exception",
        "outside a replay",
    ]
