"""Live progress of a conversation: every entry printed once, a score that lands after its
entry was printed shown when it lands, and the final summary built from every score."""

from __future__ import annotations

import pytest

from p2engine.cli.display import Progress, score_summary
from p2engine.contract.evals import EvalOutcome
from p2engine.contract.models import StackEntry
from p2engine.contract.states import State


def entry(step: int, kind: State, *scores: float | None) -> StackEntry:
    outcomes = [
        EvalOutcome(evaluator_id=f"e{i}", version="1", value=v, error=None if v else "boom")
        for i, v in enumerate(scores)
    ]
    return StackEntry(step=step, kind=kind, agent_id="a", preview=f"p{step}", evaluations=outcomes)


def test_a_score_that_lands_after_its_entry_was_printed_is_printed_when_it_lands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = Progress()
    progress.show([entry(0, State.USER_MESSAGE), entry(1, State.ASSISTANT_MESSAGE)])
    progress.show([entry(0, State.USER_MESSAGE), entry(1, State.ASSISTANT_MESSAGE, 0.75)])
    progress.show([entry(0, State.USER_MESSAGE), entry(1, State.ASSISTANT_MESSAGE, 0.75)])

    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "  [0] UserMessage: p0",
        "  [1] AssistantMessage: p1",
        "  [1] AssistantMessage: [score: e0 0.75]",
    ]


def test_entries_before_the_first_printed_never_show_their_scores(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = Progress(printed=1)
    progress.show([entry(0, State.ASSISTANT_MESSAGE, 0.5), entry(1, State.USER_MESSAGE)])
    progress.show([entry(0, State.ASSISTANT_MESSAGE, 0.5, 0.9), entry(1, State.USER_MESSAGE)])
    assert capsys.readouterr().err.splitlines() == ["  [1] UserMessage: p1"]


def test_the_summary_is_the_mean_of_every_score_with_each_evaluators_part() -> None:
    stack = [
        entry(1, State.ASSISTANT_MESSAGE, 0.5, 1.0),
        entry(2, State.ASSISTANT_MESSAGE, 0.75, None),
    ]
    # e0: 0.5 and 0.75; e1: 1.0 and a failure, which is no score (not a zero).
    assert score_summary(stack) == "score 0.75 (e0 0.62 x2, e1 1.00, 1 failed)"
    assert score_summary([entry(1, State.ASSISTANT_MESSAGE)]) == ""
    assert score_summary([entry(1, State.ASSISTANT_MESSAGE, None)]) == "no score (1 failed)"
