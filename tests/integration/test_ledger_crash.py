"""Exactly once: a worker killed after the ledger committed a transfer (a tool's, or a
reward for a score), before its activity completed, leaves a retry that finds the transfer
already made and pays nothing more; one killed after an evaluation scored leaves a retry
that scores and pays once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client

from p2engine.contract.evals import RewardPolicy, Threshold
from p2engine.contract.ids import business_key
from p2engine.contract.models import ConversationResult
from p2engine.contract.states import FinishReason, State
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import Settings
from p2engine.runtime.worker import build_worker
from tests.conftest import queue_settings
from tests.integration.helpers import activity_attempts, agent, local_activities, unique

DOOMED = str(Path(__file__).with_name("die_after.py"))
T = TypeVar("T")


async def until_the_worker_dies(
    cli_env: dict[str, str], crash: Settings, start: Awaitable[T], after: str = "commit"
) -> T:
    """Run a worker on `crash`'s queue that SIGKILLs itself right `after` the ledger's first
    commit (or the first evaluation), start the conversation, and return once that worker
    is dead."""
    doomed = subprocess.Popen(
        [sys.executable, DOOMED, after, "worker"],
        env={**cli_env, "P2E_TASK_QUEUE": crash.temporal.task_queue},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = await start
        code = await asyncio.wait_for(asyncio.to_thread(doomed.wait), timeout=60)
    finally:
        doomed.kill()
    assert code == -9, f"the worker died by SIGKILL right after the {after}"
    return started


async def test_transfer_retried_after_a_crash_past_the_commit_pays_once(
    client: Client, settings: Settings, cli_env: dict[str, str]
) -> None:
    ledger = EmbeddedLedger(settings.state_dir / "ledger.db", settings.ledger.max_transfer)
    for wallet in ("agent_alpha", "agent_beta"):
        await ledger.open_wallet(wallet, Decimal("100"))
    before = {w.agent: w.balance for w in await ledger.overview()}
    supply = (await ledger.metrics()).supply
    crash = queue_settings(settings)
    handle, _ = await until_the_worker_dies(
        cli_env,
        crash,
        start_conversation(
            client,
            crash,
            agent(settings),
            "Transfer 25 to agent_beta for surviving a crash",
            name=unique("ledger-crash"),
        ),
    )
    first_run = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
    transfer_id = business_key(handle.id, first_run, 2, 0)
    assert await ledger.get_transfer(transfer_id) is not None, "committed before the crash"

    async with build_worker(client, crash):
        result = await asyncio.wait_for(handle.result(), timeout=90)

    assert result.reason is FinishReason.DONE
    # History records the attempt that completed: one tool call, finished by its 2nd attempt.
    assert (await activity_attempts(handle))["run_tool"] == [2], "the activity was retried"
    [tool_result] = [e for e in result.stack if e.kind is State.TOOL_RESULT]
    assert tool_result.status == "ok"
    mine = [r for r in await ledger.history("agent_alpha", 100) if r.reference == handle.id]
    assert [r.transfer_id for r in mine] == [transfer_id], "one receipt"
    after = {w.agent: w.balance for w in await ledger.overview()}
    assert after["agent_alpha"] == before["agent_alpha"] - 25
    assert after["agent_beta"] == before["agent_beta"] + 25
    assert (await ledger.metrics()).supply == supply
    assert (await ledger.verify()).ok
    await ledger.close()


async def rewarded_through_a_crash(
    client: Client, settings: Settings, cli_env: dict[str, str], after: str
) -> tuple[Any, ConversationResult, EmbeddedLedger, Decimal]:
    """A conversation whose score pays 3, on a worker that SIGKILLs itself right `after` the
    first commit or evaluation, finished by a second worker: its handle, its result, the
    ledger and the agent's balance before."""
    ledger = EmbeddedLedger(settings.state_dir / "ledger.db", settings.ledger.max_transfer)
    for wallet in ("agent_alpha", "treasurer"):
        await ledger.open_wallet(wallet, Decimal("100"))
    before = await ledger.balance("agent_alpha")
    crash = queue_settings(settings)
    policy = RewardPolicy(
        budget=Decimal("10"), thresholds=[Threshold(min=0.5, amount=Decimal("3"))]
    )
    handle, _ = await until_the_worker_dies(
        cli_env,
        crash,
        start_conversation(
            client,
            crash.model_copy(update={"rewards": policy}),
            agent(settings),
            "What's the weather in Paris?",
            name=unique(f"{after}-crash"),
            evaluators=["gives_temperature"],
        ),
        after=after,
    )
    async with build_worker(client, crash):
        result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.reason is FinishReason.DONE
    return handle, result, ledger, before


async def paid_once(
    handle: Any, result: ConversationResult, ledger: EmbeddedLedger, before: Decimal
) -> None:
    [reward] = [o.reward for e in result.stack for o in e.evaluations if o.reward]
    assert (reward.status, reward.amount) == ("paid", Decimal("3"))
    mine = [r for r in await ledger.history("agent_alpha", 100) if r.reference == handle.id]
    assert [r.transfer_id for r in mine] == [reward.transfer_id], "one receipt"
    assert await ledger.balance("agent_alpha") == before + 3
    assert (await ledger.verify()).ok
    await ledger.close()


async def test_a_reward_retried_after_a_crash_past_the_commit_pays_once(
    client: Client, settings: Settings, cli_env: dict[str, str]
) -> None:
    handle, result, ledger, before = await rewarded_through_a_crash(
        client, settings, cli_env, "commit"
    )
    assert (await activity_attempts(handle))["ledger_reward"] == [2], "the reward was retried"
    await paid_once(handle, result, ledger, before)


async def test_an_evaluation_retried_after_a_crash_scores_and_pays_once(
    client: Client, settings: Settings, cli_env: dict[str, str]
) -> None:
    handle, result, ledger, before = await rewarded_through_a_crash(
        client, settings, cli_env, "evaluation"
    )
    # The evaluation ran inside a workflow task the dead worker never completed; the next
    # worker ran that task again, evaluation included, and recorded it once.
    assert await local_activities(handle, "evaluate") == ["evaluate"]
    [scored] = [e for e in result.stack if e.evaluations]
    [outcome] = scored.evaluations
    assert (outcome.evaluator_id, outcome.value) == ("gives_temperature", 1.0)
    await paid_once(handle, result, ledger, before)
