"""The learning loop's activities (activities/learning.py) without Temporal: a scoring
rollout's records digested, and proposals (the knobs drawn by the seed, a reply with no
instruction, a proposal that changes nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.activities.learning import LearnActivities
from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.learning import (
    DigestInput,
    Feedback,
    Knobs,
    ProposeInput,
    baseline_candidate,
)
from p2engine.contract.rollouts import ArmRecord
from p2engine.store.artifacts import LocalArtifactStore

AGENT = AgentSpec(id="agent_alpha", model="scripted/default", tools=["get_weather", "delegate"])
BASE = AgentConfig.of(AGENT, {})


def propose_input(knobs: Knobs, generation: int = 1) -> ProposeInput:
    reason = "the answer does not name the tool it used as its source"
    feedback = [Feedback(task="weather in Paris", reply="15°C", score=0.25, reasons=reason)]
    return ProposeInput(
        parent=baseline_candidate(BASE), feedback=feedback, model="scripted/proposer",
        knobs=knobs, generation=generation, seed=7,
    )  # fmt: skip


async def test_knobs_other_than_the_prompt_are_drawn_by_the_seed(tmp_path: Path) -> None:
    activities = LearnActivities(LocalArtifactStore(tmp_path))
    knobs = Knobs(system_prompt=False, temperature=(0.2, 0.8), tools=["get_weather", "delegate"])
    first = await activities.propose(propose_input(knobs))
    assert first.candidate is not None and first.failed is None
    changes = first.candidate.changes
    assert 0.2 <= float(changes["temperature"]) <= 0.8  # type: ignore[arg-type]
    assert set(first.candidate.config.tools) <= {"get_weather", "delegate"}
    assert first.candidate.config.tools  # never none
    again = await activities.propose(propose_input(knobs))
    assert again.candidate is not None and again.candidate.config == first.candidate.config
    # Its record is in the store, with its lineage.
    assert first.candidate.record is not None
    stored = await activities.store.get_text(first.candidate.record)
    assert f'"parent":"{BASE.id}"' in stored and '"kind":"AgentConfig"' in stored


async def test_a_proposal_that_changes_nothing_is_a_failed_one(tmp_path: Path) -> None:
    activities = LearnActivities(LocalArtifactStore(tmp_path))
    proposal = await activities.propose(propose_input(Knobs(system_prompt=False)))
    assert proposal.candidate is None
    assert proposal.failed == "the proposal changes nothing of its parent"


@pytest.mark.usefixtures("scripted")
async def test_the_proposer_adds_the_instruction_the_feedback_asks_for(tmp_path: Path) -> None:
    activities = LearnActivities(LocalArtifactStore(tmp_path))
    proposal = await activities.propose(propose_input(Knobs()))
    assert proposal.candidate is not None
    assert "Cite the tool you used." in (proposal.candidate.config.system_prompt or "")
    assert proposal.candidate.changes.keys() == {"system_prompt"}


def record(case: int, repeat: int, score: float | None, status: str = "done") -> ArmRecord:
    return ArmRecord(
        key=f"learn/{BASE.id}/c{case}-r{repeat}", team="learn", variant=BASE.id, case=case,
        repeat=repeat, case_id=str(case), agent_id="agent_alpha", workflow_id="w",
        status=status, score=score, cost_usd=0.01, prompt_tokens=10,
    )  # fmt: skip


async def test_a_digest_averages_repeats_per_task_and_counts_no_score_as_zero(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    records = [record(0, 0, 1.0), record(0, 1, 0.5), record(1, 0, None, "failed")]
    ref = await store.put_bytes(b"\n".join(r.model_dump_json().encode() for r in records))
    scored = await LearnActivities(store).digest(
        DigestInput(records_ref=ref, tasks=["task a", "task b"], weakest=1)
    )
    assert scored.per_task[BASE.id] == {"task a": 0.75, "task b": 0.0}
    estimate = scored.estimates[BASE.id]
    assert estimate.mean == pytest.approx(0.5) and 0 <= estimate.low <= estimate.high <= 1  # type: ignore[operator]
    assert scored.usd == pytest.approx(0.03) and scored.tokens == 30
    [weakest] = scored.weakest[BASE.id]
    assert weakest.task == "task b" and "ended failed" in weakest.reasons
