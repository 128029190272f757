"""Replaying a recorded history against the current workflow code, in this process.

A replay re-runs the workflow code on the recorded events and checks that it issues the
same commands; nothing runs again (no model call, no tool, no transfer: their results come
from the history). Besides the verdict it keeps the workflow object it rebuilt, so that
what the run held at any step can be read from it (its stack and checkpoints): how a
closed conversation, or one no worker serves, is branched and inspected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from workflows.compare import CompareWorkflow
from workflows.conversation import ConversationWorkflow

WORKFLOWS = [ConversationWorkflow, CompareWorkflow]


@dataclass(frozen=True)
class Replayed:
    """A replay's verdict, and the workflow object as the replay left it."""

    failure: Exception | None
    instance: Any  # a ConversationWorkflow or CompareWorkflow, None if the run never began


async def replay(history: WorkflowHistory) -> Replayed:
    """Replay `history` with the current code. Unsandboxed, so the rebuilt object can be read
    afterwards; what is checked, the commands against the events, is the same."""
    kept = _KeepInstance()
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=UnsandboxedWorkflowRunner(),
        data_converter=pydantic_data_converter,
        interceptors=[kept],
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return Replayed(result.replay_failure, kept.instance)


class _KeepInstance(Interceptor):
    def __init__(self) -> None:
        self.instance: Any = None

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        keeper = self

        class Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                keeper.instance = workflow.instance()
                return await super().execute_workflow(input)

        return Inbound
