"""ConversationWorkflow: one agent conversation, driven by the transition table in fsm.py.

The loop looks up a handler for the current state; every handler ends by asking
`fsm.transition()` for the next state, so a move the table lacks fails loudly. Content goes
to the artifact store through activities; the workflow keeps small stack entries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.names import LLM_STEP, RUN_TOOL
    from workflows import search
    from workflows.fsm import TERMINAL, Event, FinishReason, IllegalTransition, State, transition
    from workflows.models import (
        ContentNode,
        ConversationInput,
        ConversationResult,
        ConversationStatus,
        LlmStepInput,
        LlmStepResult,
        StackEntry,
        ToolCallRequest,
        ToolInput,
        ToolOutcome,
        Usage,
        preview,
    )

# Model calls heartbeat, so a dead worker is noticed after 10 s, not after the 2 min timeout.
LLM_ACTIVITY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
}
TOOL_ACTIVITY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
    ),
}


@workflow.defn(name="ConversationWorkflow", failure_exception_types=[IllegalTransition])
class ConversationWorkflow:
    def __init__(self) -> None:
        self._stack: list[StackEntry] = []
        self._state = State.USER_MESSAGE
        self._step = 0
        self._usage = Usage()
        self._head: str | None = None
        self._pending: list[ContentNode] = []
        self._calls: list[ToolCallRequest] = []
        self._reason: FinishReason | None = None
        self._agent_id = ""
        self._handlers: dict[State, Callable[[ConversationInput], Awaitable[None]]] = {
            State.USER_MESSAGE: self._model_step,
            State.TOOL_RESULT: self._model_step,
            State.TOOL_CALL: self._run_tools,
            State.ASSISTANT_MESSAGE: self._reply,
        }

    @workflow.run
    async def run(self, inp: ConversationInput) -> ConversationResult:
        self._agent_id = inp.agent.id
        workflow.upsert_search_attributes([search.AGENT.value_set(inp.agent.id)])
        user = self._node(State.USER_MESSAGE, text=inp.message)
        self._push(State.USER_MESSAGE, ref=user.ref(), preview=preview(inp.message))
        self._stage(user)
        self._publish()
        while self._state not in TERMINAL:
            await self._handlers[self._state](inp)
        return self._result()

    # --- queries --------------------------------------------------------------------------

    @workflow.query
    def stack(self) -> list[StackEntry]:
        return self._stack

    @workflow.query
    def state(self) -> ConversationStatus:
        return ConversationStatus(
            conversation_id=workflow.info().workflow_id,
            agent_id=self._agent_id,
            state=self._state,
            step=self._step,
            usage=self._usage,
            reason=self._reason,
        )

    # --- state handlers -------------------------------------------------------------------

    async def _model_step(self, inp: ConversationInput) -> None:
        agent = inp.agent
        if self._step >= agent.limits.max_steps:
            self._finish(FinishReason.MAX_STEPS, f"step limit {agent.limits.max_steps} reached")
            return
        self._step += 1
        model = inp.model or agent.model or "scripted/default"
        assert self._head is not None
        request = LlmStepInput(
            conversation_id=workflow.info().workflow_id,
            agent_id=agent.id,
            step=self._step,
            model=model,
            head=self._head,
            pending=self._pending,
            system_prompt=agent.system_prompt,
            tools=agent.tools,
            temperature=agent.temperature,
            top_p=agent.top_p,
            max_tokens=agent.max_tokens,
        )
        try:
            result: LlmStepResult = await workflow.execute_activity(
                LLM_STEP,
                request,
                result_type=LlmStepResult,
                summary=f"{agent.id} · {model} · step {self._step}",
                **LLM_ACTIVITY,
            )
        except ActivityError as err:
            self._finish(FinishReason.ERROR, f"model step failed: {_cause(err)}")
            return
        self._pending = []
        self._head = result.ref
        self._usage += result.usage
        if result.tool_calls:
            self._move(Event.MODEL_TOOL_CALLS)
            self._calls = result.tool_calls
            for n, call in enumerate(result.tool_calls):
                self._push(
                    State.TOOL_CALL,
                    ref=result.ref,
                    preview=preview(f"{call.name}({call.arguments})"),
                    tool_name=call.name,
                    tool_call_id=call.id,
                    usage=result.usage if n == 0 else None,  # one model step, counted once
                )
        else:
            self._move(Event.MODEL_TEXT)
            self._push(
                State.ASSISTANT_MESSAGE,
                ref=result.ref,
                preview=result.text_preview,
                usage=result.usage,
            )
        self._publish()

    async def _run_tools(self, inp: ConversationInput) -> None:
        self._step += 1
        calls, self._calls = self._calls, []
        # Calls of one model step run concurrently; results keep the order of the calls.
        outcomes = await asyncio.gather(*(self._run_tool(inp, call) for call in calls))
        self._move(Event.TOOLS_DONE)
        for call, outcome in zip(calls, outcomes, strict=True):
            node = self._node(
                State.TOOL_RESULT,
                tool_call_id=call.id,
                tool_name=call.name,
                result_ref=outcome.result_ref,
                text=outcome.text,
            )
            self._stage(node)
            self._push(
                State.TOOL_RESULT,
                ref=node.ref(),
                preview=outcome.preview,
                tool_name=call.name,
                tool_call_id=call.id,
                status=outcome.status,
            )
        self._publish()

    async def _run_tool(self, inp: ConversationInput, call: ToolCallRequest) -> ToolOutcome:
        request = ToolInput(
            conversation_id=workflow.info().workflow_id,
            agent_id=inp.agent.id,
            step=self._step,
            call=call,
        )
        try:
            outcome: ToolOutcome = await workflow.execute_activity(
                RUN_TOOL,
                request,
                result_type=ToolOutcome,
                summary=preview(f"{call.name}({call.arguments})", 100),
                **TOOL_ACTIVITY,
            )
            return outcome
        except ActivityError as err:
            # The model reads the failure and decides; the conversation goes on.
            cause = _cause(err)
            status = "timeout" if "timeout" in cause.lower() else "error"
            message = json.dumps({"error": f"tool {call.name} failed: {cause}"})
            return ToolOutcome(status=status, text=message, preview=preview(message))

    async def _reply(self, inp: ConversationInput) -> None:
        self._move(Event.REPLY_ONE_SHOT)
        self._reason = FinishReason.DONE
        self._push(State.FINISHED, reason=FinishReason.DONE)
        self._publish()

    # --- bookkeeping ----------------------------------------------------------------------

    def _node(self, kind: State, **fields: object) -> ContentNode:
        return ContentNode.model_validate(
            {
                "kind": kind,
                "parent": self._head,
                "conversation_id": workflow.info().workflow_id,
                "step": self._step,
                "agent_id": self._agent_id,
                **fields,
            }
        )

    def _stage(self, node: ContentNode) -> None:
        """Queue a node for the next model step to store, and make it the transcript head."""
        self._pending.append(node)
        self._head = node.ref()

    def _move(self, event: Event) -> None:
        self._state = transition(self._state, event)

    def _push(self, kind: State, **fields: object) -> None:
        entry = StackEntry.model_validate(
            {"step": self._step, "kind": kind, "agent_id": self._agent_id, **fields}
        )
        self._stack.append(entry)

    def _finish(self, reason: FinishReason, detail: str) -> None:
        self._move(Event.LIMIT)
        self._reason = reason
        self._push(State.FINISHED, reason=reason, preview=preview(detail))
        self._publish()

    def _publish(self) -> None:
        """Keep the Web UI's view of the conversation current."""
        last = self._stack[-1]
        workflow.upsert_search_attributes(
            [search.STATE.value_set(self._state.value), search.STEP.value_set(self._step)]
        )
        reason = f" ({self._reason})" if self._reason else ""
        workflow.set_current_details(
            f"**{self._agent_id}** · state **{self._state}**{reason} · step {self._step} · "
            f"{self._usage.total_tokens} tokens\n\n"
            f"last: {last.kind} {last.preview}"
        )

    def _result(self) -> ConversationResult:
        reply = next((e for e in reversed(self._stack) if e.kind is State.ASSISTANT_MESSAGE), None)
        if self._reason is None:
            raise ApplicationError("conversation ended without a finish reason", non_retryable=True)
        return ConversationResult(
            conversation_id=workflow.info().workflow_id,
            agent_id=self._agent_id,
            reason=self._reason,
            reply_ref=reply.ref if reply else None,
            reply_preview=reply.preview if reply else (self._stack[-1].preview or ""),
            steps=self._step,
            usage=self._usage,
            stack=self._stack,
        )


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split())[:300]
