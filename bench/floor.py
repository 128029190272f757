"""The floor under the step-overhead figures: a workflow with the shape of a K-city
conversation (model step, tool call, ..., model step: one activity per FSM step, each with
the real step's options, on a worker that runs activities eagerly as ours does) whose
activities do nothing. What a floor step costs is Temporal and its SDK alone, so
ours / floor is the part of a step that is ours.

It leaves out what the conversation adds around its activities: search-attribute upserts,
current details, activity summaries, inputs and results, so those count as ours.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

with workflow.unsafe.imports_passed_through():
    from p2engine.contract.models import ToolInfo
    from p2engine.runtime.sandbox import workflow_runner
    from p2engine.workflows.options import LLM_ACTIVITY, tool_activity

FLOOR_MODEL = "floor_model"
FLOOR_TOOL = "floor_tool"


class FloorInput(BaseModel):
    cities: int
    tool: ToolInfo  # the real tool's registration, so the tool steps get its options


@activity.defn(name=FLOOR_MODEL)
async def floor_model() -> None:
    """Stands for llm_step."""


@activity.defn(name=FLOOR_TOOL)
async def floor_tool() -> None:
    """Stands for run_tool."""


@workflow.defn(name="StepFloor")
class StepFloor:
    @workflow.run
    async def run(self, inp: FloorInput) -> None:
        for _ in range(inp.cities):
            await workflow.execute_activity(FLOOR_MODEL, **LLM_ACTIVITY)
            await workflow.execute_activity(FLOOR_TOOL, **tool_activity(inp.tool))
        await workflow.execute_activity(FLOOR_MODEL, **LLM_ACTIVITY)


def floor_worker(client: Client, task_queue: str) -> Worker:
    """A worker of its own queue in the benchmark's process, polling and sandboxed as
    runtime/worker.py's."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[StepFloor],
        workflow_runner=workflow_runner(),
        activities=[floor_model, floor_tool],
        activity_task_poller_behavior=PollerBehaviorAutoscaling(),
    )
