"""`p2e replay` on downloaded histories: the golden ones replay, a changed workflow is
named at the event it no longer matches, and bad input is one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
