"""Ledger throughput: transfers per second on the embedded backend, directly in one process
and through the Temporal activity path (a workflow calling the `ledger_transfer` activity
with workflow-made transfer ids, as conversations and rollouts do).

    python -m bench.ledger [--transfers N] [--activity-transfers M] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio import workflow
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from p2engine.activities.ledger import LedgerActivities
from p2engine.contract.ids import business_key
from p2engine.contract.names import LEDGER_TRANSFER
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.ledger.models import Receipt, TransferRequest
from p2engine.runtime.testbed import private_temporal
from p2engine.workflows.options import LEDGER_ACTIVITY

TARGET_PER_S = 1000
WALLETS = [f"agent_{n}" for n in range(5)]


@workflow.defn(name="LedgerBench", sandboxed=False)
class LedgerBench:
    """Makes `count` transfers in batches of `concurrency`, like a payout loop would."""

    @workflow.run
    async def run(self, count: int, concurrency: int) -> int:
        info = workflow.info()
        wf_id = info.workflow_id
        done = 0
        for start in range(0, count, concurrency):
            batch = range(start, min(count, start + concurrency))
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        LEDGER_TRANSFER,
                        TransferRequest(
                            transfer_id=business_key(wf_id, info.first_execution_run_id, i, 0),
                            payer=WALLETS[i % 5],
                            payee=WALLETS[(i + 1) % 5],
                            amount=Decimal("0.01"),
                            reference=wf_id,
                        ),
                        result_type=Receipt,
                        **LEDGER_ACTIVITY,
                    )
                    for i in batch
                )
            )
            done += len(batch)
        return done


async def direct(ledger: EmbeddedLedger, count: int, concurrency: int) -> float:
    started = time.perf_counter()
    for start in range(0, count, concurrency):
        await asyncio.gather(
            *(
                ledger.transfer(
                    f"direct/{i}", WALLETS[i % 5], WALLETS[(i + 2) % 5], Decimal("0.01")
                )
                for i in range(start, min(count, start + concurrency))
            )
        )
    return count / (time.perf_counter() - started)


async def bench(args: argparse.Namespace, state_dir: Path) -> int:
    ledger = EmbeddedLedger(state_dir / "ledger.db", Decimal("1000"))
    for wallet in WALLETS:
        await ledger.open_wallet(wallet, Decimal("1000000"))
    sequential = await direct(ledger, args.transfers, 1)
    concurrent = await direct(ledger, args.transfers, args.concurrency)
    print(f"embedded, one process: {sequential:,.0f} transfers/s sequential, "
          f"{concurrent:,.0f}/s with {args.concurrency} in flight")  # fmt: skip

    async with private_temporal(state_dir, "bench") as temporal:
        client, task_queue = temporal.client, temporal.settings.temporal.task_queue
        activities = LedgerActivities(ledger, "agent_0")
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[LedgerBench],
            activities=[activities.transfer],
            max_concurrent_activities=args.concurrency,
            activity_task_poller_behavior=PollerBehaviorAutoscaling(),  # as runtime/worker.py
        ):
            await client.execute_workflow(
                LedgerBench.run, args=[20, 10], id="warm-up", task_queue=task_queue
            )
            started = time.perf_counter()
            made = await client.execute_workflow(
                LedgerBench.run,
                args=[args.activity_transfers, args.concurrency],
                id="ledger-bench",
                task_queue=task_queue,
                execution_timeout=timedelta(minutes=10),
            )
            through_temporal = made / (time.perf_counter() - started)
    print(f"through the Temporal activity path: {through_temporal:,.0f} transfers/s "
          f"({made} transfers, {args.concurrency} activities in flight)")  # fmt: skip
    report = await ledger.verify()
    print(f"verify: {'ok' if report.ok else report.problem} ({report.rows} journal rows)")
    await ledger.close()
    met = max(sequential, concurrent) >= TARGET_PER_S
    print(f"target >= {TARGET_PER_S}/s in one process: {'met' if met else 'NOT met'}")
    return 0 if met and report.ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=5000, help="direct transfers")
    parser.add_argument("--activity-transfers", type=int, default=500, help="via Temporal")
    parser.add_argument("--concurrency", type=int, default=20, help="transfers in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        sys.exit(asyncio.run(bench(args, Path(state_dir))))


if __name__ == "__main__":
    main()
