"""Rollouts on a real dev server: every arm a child conversation, listed by its rollout in
visibility, recorded whatever became of it (done, failed, cancelled, skipped), across
continue-as-new, and settled against the ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from p2engine.agents.config import ScriptedModelSettings
from p2engine.contract.errors import InvalidInput
from p2engine.contract.rollouts import ArmRecord, RolloutInput
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.runtime.rollouts import (
    RolloutClient,
    RolloutHandle,
    ScheduleNotFound,
    schedule_summary,
)
from p2engine.runtime.settings import Settings
from p2engine.runtime.worker import build_worker
from tests.conftest import queue_settings
from tests.integration.helpers import eventually, step_inputs, unique
from tests.integration.test_ledger_crash import until_the_worker_dies

MIXED = """\
repeats: 2
concurrency: 3
baseline: plain
teams:
  desk:
    initial_message: What's the weather in Paris?
    base: {agent_id: agent_alpha, model: scripted/default}
    variants:
      - id: plain
      - id: expert
        persona: weather_expert
      - id: broken
        initial_message: simulate error 400
    eval: {evaluator_id: helpful}
"""


def rollout_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{unique('r')}.yml"
    path.write_text(text)
    return path


def scripted(settings: Settings, **model: float) -> Settings:
    """Settings on a queue of their own whose worker's scripted model is slow or priced."""
    return queue_settings(settings).model_copy(update={"scripted": ScriptedModelSettings(**model)})


async def own_ledger(settings: Settings, tmp_path: Path) -> tuple[Settings, EmbeddedLedger]:
    """Settings on a queue and state dir of their own, whose new ledger has agent_alpha and
    agent_beta with 1,000 each: no other test's payments change what these arms can pay."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    mine = queue_settings(settings).model_copy(update={"state_dir": state_dir})
    ledger = EmbeddedLedger(state_dir / "ledger.db", mine.ledger.max_transfer)
    for wallet in ("agent_alpha", "agent_beta"):
        await ledger.open_wallet(wallet, Decimal("1000"))
    return mine, ledger


async def arm_ids(client: Client, rollout_id: str) -> list[str]:
    """The conversations visibility lists for the Web UI filter P2eRollout="<id>"."""
    query = f"P2eRollout = '{rollout_id}'"
    return sorted([e.id async for e in client.list_workflows(query)])


async def records_of(rollouts: RolloutClient, handle: RolloutHandle) -> list[ArmRecord]:
    return await rollouts.records(await handle.describe())


async def test_every_arm_runs_once_is_listed_by_its_rollout_and_is_compared(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    mine = queue_settings(settings)
    rollouts = RolloutClient(mine, client)
    prepared = rollouts.prepare(rollout_file(tmp_path, MIXED))
    async with build_worker(client, mine):
        handle = await rollouts.start(prepared.input, name=unique("mixed"))
        result = await handle.result()
        progress = await rollouts.progress(handle)
    expected = sorted(
        f"{handle.id}/desk/{v}/r{n}" for v in ("plain", "expert", "broken") for n in (0, 1)
    )
    await eventually(lambda: _listed(client, handle.id, expected), timeout=20)
    assert progress.phase == "done" and progress.finished == progress.total == 6
    records = await records_of(rollouts, handle)
    assert sorted(r.workflow_id for r in records) == expected
    broken = [r for r in records if r.variant == "broken"]
    assert {r.status for r in broken} == {"failed"} and all(r.error for r in broken)
    assert {r.status for r in records if r.variant != "broken"} == {"done"}
    comparison = result.comparison
    assert [v.variant for v in comparison.variants] == ["plain", "expert", "broken"]
    assert comparison.baseline == "desk/plain"
    by_variant = {v.variant: v for v in comparison.variants}
    assert by_variant["broken"].failed == 2 and by_variant["broken"].success_rate == 0
    assert by_variant["expert"].versus is not None and by_variant["expert"].versus.paired
    # The children carry their variant for the Web UI.
    child = await client.get_workflow_handle(expected[0]).describe()
    assert child.search_attributes["P2eVariant"] == ["desk/broken"]
    # An arm's record names the config its model steps ran, its persona's text in it.
    expert = next(r for r in records if r.variant == "expert")
    first, *later = await step_inputs(client.get_workflow_handle(expert.workflow_id))
    assert first.config is not None and first.config.id == expert.config
    texts = prepared.input.catalog.persona_texts
    assert first.config.persona_text == texts["weather_expert"]
    assert later and {s.config_ref for s in later} == {first.config.ref}


async def _listed(client: Client, rollout_id: str, expected: list[str]) -> bool:
    return await arm_ids(client, rollout_id) == expected


async def test_a_rollout_continues_as_new_and_keeps_every_arms_record(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    mine = queue_settings(settings)
    rollouts = RolloutClient(mine, client)
    text = MIXED.replace("repeats: 2", "repeats: 3")
    prepared = rollouts.prepare(rollout_file(tmp_path, text))
    inp: RolloutInput = prepared.input.model_copy(update={"arms_per_run": 4})
    async with build_worker(client, mine):
        handle = await rollouts.start(inp, name=unique("batches"))
        result = await handle.result()
        progress = await rollouts.progress(handle)
    assert progress.runs == 3  # 9 arms, 4 per run
    records = await records_of(rollouts, handle)
    assert len(records) == len({r.key for r in records}) == result.total == 9
    assert sum(v.arms for v in result.comparison.variants) == 9


async def test_cancelling_a_rollout_cancels_its_running_arms_and_records_them_all(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    slow = scripted(settings, latency_ms=3000)
    rollouts = RolloutClient(slow, client)
    text = MIXED.replace("concurrency: 3", "concurrency: 2")
    prepared = rollouts.prepare(rollout_file(tmp_path, text))
    async with build_worker(client, slow):
        handle = await rollouts.start(prepared.input, name=unique("cancelled"))

        async def two_running() -> bool:
            return (await rollouts.progress(handle)).running == 2

        await eventually(two_running, timeout=20)
        await rollouts.cancel(handle)
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
        assert isinstance(ended.value.cause, CancelledError)
        description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.CANCELED
    records = await rollouts.records(description)
    assert len(records) == 6 and {r.status for r in records} == {"cancelled"}, [
        (r.key, r.status, r.error) for r in records
    ]
    for arm in [r for r in records if r.error != "never started"]:
        child = await client.get_workflow_handle(arm.workflow_id).describe()
        assert child.status == WorkflowExecutionStatus.CANCELED


async def test_a_spent_budget_stops_new_arms_and_skips_the_rest(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    priced = scripted(settings, cost_per_1k_tokens=1.0)
    rollouts = RolloutClient(priced, client)
    text = MIXED.replace("concurrency: 3", "concurrency: 1\nbudget: 0.5")
    prepared = rollouts.prepare(rollout_file(tmp_path, text))
    async with build_worker(client, priced):
        handle = await rollouts.start(prepared.input, name=unique("budget"))
        await handle.result()
    records = await records_of(rollouts, handle)
    ran = [r for r in records if r.status != "skipped"]
    assert len(records) == 6 and 0 < len(ran) < 6
    assert sum(r.cost_usd for r in ran[:-1]) < 0.5 <= sum(r.cost_usd for r in ran)
    assert all("budget" in (r.error or "") for r in records if r.status == "skipped")


async def test_each_arm_s_transfers_are_counted_from_the_ledger(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    mine, _ = await own_ledger(settings, tmp_path)
    rollouts = RolloutClient(mine, client)
    prepared = rollouts.prepare(Path("config/rollouts/task_with_payment.yml"))
    async with build_worker(client, mine):
        handle = await rollouts.start(prepared.input, name=unique("paying"))
        result = await handle.result()
    records = {r.key: r for r in await records_of(rollouts, handle)}
    assert records["paying_desk/small_fee/r0"].net_flow == Decimal("-2")
    assert records["paying_desk/large_fee/r1"].net_flow == Decimal("-10")
    assert all(r.transactions == 1 for r in records.values())
    by_variant = {v.variant: v for v in result.comparison.variants}
    assert by_variant["large_fee"].net_flow == Decimal("-20")
    alpha = next(w for w in result.wallets if w.agent == "agent_alpha")
    assert alpha.before - alpha.after == Decimal(2 * (2 + 10 + 3))
    assert any("share its wallet" in n for n in result.comparison.notes)


async def test_a_rollout_id_taken_is_refused(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    rollouts = RolloutClient(queue_settings(settings), client)
    prepared = rollouts.prepare(rollout_file(tmp_path, MIXED))
    name = unique("twice")
    await rollouts.start(prepared.input, name=name)
    with pytest.raises(InvalidInput, match="exists already"):
        await rollouts.start(prepared.input, name=name)


async def test_a_worker_killed_mid_rollout_leaves_every_arm_run_once_and_paid_once(
    client: Client, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    crash, ledger = await own_ledger(settings, tmp_path)
    before = await ledger.balance("agent_alpha")
    rollouts = RolloutClient(crash, client)
    text = Path("config/rollouts/task_with_payment.yml").read_text() + "concurrency: 2\n"
    prepared = rollouts.prepare(rollout_file(tmp_path, text))
    # The worker dies right after the ledger committed the rollout's first transfer.
    handle = await until_the_worker_dies(
        {**cli_env, "P2E_STATE_DIR": str(crash.state_dir)},
        crash,
        rollouts.start(prepared.input, name=unique("crash")),
    )
    assert not (await records_of(rollouts, handle)), "the rollout had not finished"
    async with build_worker(client, crash):
        result = await handle.result()
    expected = sorted(
        f"{handle.id}/paying_desk/{v}/r{n}"
        for v in ("small_fee", "large_fee", "reward")
        for n in (0, 1)
    )
    await eventually(lambda: _listed(client, handle.id, expected), timeout=20)
    records = await records_of(rollouts, handle)
    assert sorted(r.workflow_id for r in records) == expected
    assert {r.status for r in records} == {"done"}
    assert [r.transactions for r in records] == [1] * 6, "each arm paid exactly once"
    journal = await ledger.audit(limit=100_000)
    paid = [e for e in journal if e.reference.startswith(f"{handle.id}/")]
    assert len(paid) == 6 and len({e.transfer_id for e in paid}) == 6
    assert before - await ledger.balance("agent_alpha") == Decimal(2 * (2 + 10 + 3))
    assert result.total == 6


ONE_ARM = """\
teams:
  desk:
    initial_message: hello
    base: {agent_id: agent_beta}
    variants: [{id: only}]
"""


async def test_a_schedule_runs_rollouts_on_trigger_and_on_its_interval(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    mine = queue_settings(settings)
    rollouts = RolloutClient(mine, client)
    prepared = rollouts.prepare(rollout_file(tmp_path, ONE_ARM))
    name = unique("nightly")
    async with build_worker(client, mine):
        schedule_id = await rollouts.create_schedule(
            prepared, schedule_id=name, cron=None, every=timedelta(seconds=3)
        )
        try:
            handle, _ = await rollouts.schedule(schedule_id)
            await handle.trigger()

            async def two_finished() -> bool:
                runs = [
                    r
                    for r in await rollouts.list_rollouts(100)
                    if r.id.startswith(f"rollout-{name}-")
                ]
                return len([r for r in runs if r.phase == "done"]) >= 2

            await eventually(two_finished, timeout=30, interval=0.5)
            summary = schedule_summary(await handle.describe())
            # A pause's note is the user's; the file the schedule was made from stays known.
            await handle.pause(note="paused for maintenance")
            paused = await handle.describe()
            assert paused.schedule.state.note == "paused for maintenance"
            assert await rollouts.schedule_file(paused) == str(prepared.file.path)
        finally:
            await (await rollouts.schedule(schedule_id))[0].delete()
    assert summary.every == [timedelta(seconds=3)] and summary.overlap == "skip"
    assert summary.runs >= 2 and all(
        rid.startswith(f"rollout-{name}-") for _, rid in summary.recent
    )
    with pytest.raises(ScheduleNotFound):
        await rollouts.schedule(schedule_id)
