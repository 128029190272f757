"""The sandbox the project's workers run workflows in refuses what would make a workflow
non-deterministic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from p2engine.runtime.sandbox import workflow_runner


@workflow.defn(name="ReadsTheClock")
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # not workflow.now(): must be refused


async def test_a_workflow_reading_the_system_clock_fails_its_task(client: Client) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[ReadsTheClock], workflow_runner=workflow_runner()
    ):
        handle = await client.start_workflow(ReadsTheClock.run, id=queue, task_queue=queue)
        try:
            failures: list[str] = []
            for _ in range(100):
                events = (await handle.fetch_history()).events
                failures = [
                    e.workflow_task_failed_event_attributes.failure.message
                    for e in events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                ]
                if failures:
                    break
                await asyncio.sleep(0.1)
        finally:
            await handle.terminate()

    assert failures, "the workflow task was not refused"
    assert "datetime.datetime.now" in failures[0]
