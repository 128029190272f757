"""Golden histories, one per FSM path, replayed against the current workflow code, so a
change that would break running conversations fails here first (`make golden` re-records
them after an intended change)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from p2engine.runtime.converter import DATA_CONVERTER
from p2engine.runtime.replay import WORKFLOWS
from tests.golden.record import BRANCHES, CASES, COMPARISONS, LEARNS, ROLLOUTS, golden_id
from tests.replay.changed import CallsTheToolFirst

GOLDEN_DIR = Path(__file__).parent.parent / "golden"


def load(name: str) -> WorkflowHistory:
    path = GOLDEN_DIR / f"{name}.json"
    return WorkflowHistory.from_json(golden_id(name), path.read_text())


RECORDED = sorted([*CASES, *COMPARISONS, *BRANCHES, *ROLLOUTS, *LEARNS])


def test_every_recorded_path_has_a_golden_history() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.json")) == RECORDED


@pytest.mark.parametrize("name", RECORDED)
async def test_golden_history_replays_without_nondeterminism(name: str) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(load(name), raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_replay_rejects_a_workflow_that_changed_its_commands() -> None:
    replayer = Replayer(workflows=[CallsTheToolFirst], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(load("tool_call"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError)
