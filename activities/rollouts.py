"""Rollout activities: storing finished arms' records, and settling a rollout at its end
(each arm's transfers from the ledger, then the comparison of its variants).

Records go to the artifact store as JSON lines, so the rollout's history keeps a ref per
run, not a record per arm. The statistics run in a thread: they are numpy work that would
otherwise hold the worker's event loop, and its heartbeats, for their whole length.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import activity

from p2engine.activities.heartbeat import heartbeating
from p2engine.activities.ledger import as_activity_error
from p2engine.contract.names import SETTLE_ROLLOUT, STORE_ARMS
from p2engine.contract.rollouts import (
    ArmBatch,
    ArmRecord,
    Settled,
    SettleInput,
    parse_records,
    records_jsonl,
)
from p2engine.evals.variants import compare
from p2engine.ledger.base import Ledger
from p2engine.ledger.errors import LedgerError
from p2engine.ledger.flows import AUDIT_LIMIT, arm_entries, flow
from p2engine.store.base import ArtifactStore

# The ledger's clock and the workflow's may differ a little: read the journal from a bit
# before the rollout started (references keep other runs' transfers out).
CLOCK_MARGIN = timedelta(minutes=5)


class RolloutActivities:
    def __init__(self, store: ArtifactStore, ledger: Ledger) -> None:
        self.store = store
        self.ledger = ledger

    @activity.defn(name=STORE_ARMS)
    async def store_arms(self, batch: ArmBatch) -> str:
        return await self.store.put_bytes(records_jsonl(batch.records))

    @activity.defn(name=SETTLE_ROLLOUT)
    async def settle(self, inp: SettleInput) -> Settled:
        with heartbeating():
            records = [
                r for ref in inp.stored for r in parse_records(await self.store.get_bytes(ref))
            ]
            missing = inp.no_ledger
            if missing is None:
                try:
                    records = await self._with_flows(inp.rollout_id, inp.since, records)
                except LedgerError as exc:
                    if exc.retryable:
                        raise as_activity_error(exc) from exc
                    missing = str(exc)
            records_ref = await self.store.put_bytes(records_jsonl(records))
            comparison = await asyncio.to_thread(
                compare, records, inp.spec.metric, inp.spec.baseline, inp.spec.seed
            )
        if missing is not None:
            comparison.notes.append(f"no ledger figures: {missing}")
        return Settled(records_ref=records_ref, comparison=comparison)

    async def _with_flows(
        self, rollout_id: str, since: datetime, records: list[ArmRecord]
    ) -> list[ArmRecord]:
        entries = await self.ledger.audit(since=since - CLOCK_MARGIN, limit=AUDIT_LIMIT)
        by_arm = arm_entries(entries, rollout_id)
        settled = []
        for record in records:
            moved = flow(by_arm.get(record.key, []), record.agent_id)
            settled.append(
                record.model_copy(
                    update={"transactions": moved.transactions, "net_flow": moved.net}
                )
            )
        return settled
