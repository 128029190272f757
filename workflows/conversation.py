"""ConversationWorkflow: one agent conversation, driven by the transition table in fsm.py.

The loop looks up a handler for the current state; every handler ends by asking
`fsm.transition()` for the next state, so a move the table lacks fails loudly. Content goes
to the artifact store through activities; the workflow keeps small stack entries.

Agent types share the loop: `llm` and `rule_based` agents take their turn in an activity
(`llm_step`, `rule_step`); a `human` agent's turn waits for the `answer` update. A call to
`delegate` runs the other agent as a child conversation. Interactive conversations wait for
the `send_message` update after each reply.
"""

# No `from __future__ import annotations` here: the SDK reads every handler's type hints
# each time the sandbox loads this module for a run, and string annotations cost it a
# compile each.
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from p2engine.workflows.conversation_deps import (
        BRANCH_TAKEN,
        CANCEL_ENDS_CONVERSATION,
        CONFIG_BY_REF,
        CONVERSATION_WORKFLOW,
        DELEGATE,
        EVAL_ACTIVITY,
        EVALUATE,
        KNOBS,
        LEDGER_ACTIVITY,
        LEDGER_REWARD,
        LLM_ACTIVITY,
        LLM_STEP,
        LOAD_STATE,
        LOCAL_ACTIVITY,
        LOCAL_QUICK_TOOLS,
        MCP_CALL,
        MCP_LIST,
        MODEL_INPUT_STATES,
        QUICK_EVAL_ACTIVITY,
        QUICK_EVALUATIONS_LOCAL,
        READ_CATALOG,
        READ_CATALOG_ACTIVITY,
        RELEASE_UPDATE,
        RULE_STEP,
        RUN_TOOL,
        SCORES_IN_MEMO,
        SCORES_MEMO,
        STORE_NODES,
        SYNC_STATUS_QUERY,
        TERMINAL,
        TOOL_STORES_RESULT,
        UPSERT_ONCE_PER_TASK,
        AgentConfig,
        AgentSpec,
        BranchBase,
        BranchChild,
        BranchStart,
        CallResult,
        Catalog,
        ContentNode,
        ConversationInput,
        ConversationResult,
        ConversationState,
        ConversationStatus,
        DelegateArgs,
        EvalItem,
        EvalOutcome,
        EvalRequest,
        Event,
        FinishReason,
        IllegalTransition,
        LocalActivityOptions,
        McpCallInput,
        McpListed,
        Overrides,
        Receipt,
        Release,
        RewardOutcome,
        StackEntry,
        State,
        StepCalls,
        StepInput,
        StepResult,
        StoreNodesInput,
        SyncStatus,
        ToolCallRequest,
        ToolInput,
        ToolOutcome,
        ToolStatus,
        TransferRequest,
        TurnResult,
        ValidationError,
        WaitingFor,
        branching,
        business_key,
        call_refusal,
        catalog_part,
        child_input,
        child_search_attributes,
        child_summary,
        child_workflow_id,
        conversation_details,
        current_details,
        delegation_refusal,
        duplicate_verdict,
        evaluations,
        fsm_transition,
        invalid_arguments,
        limit_reached,
        mcp,
        preview,
        propagation,
        refuse,
        rewards,
        root_cause,
        routing,
        runs_local,
        search,
        step_extras,
        tool_activity,
        tracing,
        validators,
    )


@workflow.defn(name=CONVERSATION_WORKFLOW, failure_exception_types=[IllegalTransition])
class ConversationWorkflow:
    @workflow.init
    def __init__(self, inp: ConversationInput) -> None:
        self.inp = inp
        self.s = inp.resume or ConversationState()
        fresh = inp.resume is None and inp.branch is None
        if fresh and inp.message is None and inp.interactive:
            # Set here, not in run(): an update that arrives with the start is validated
            # before run() begins, and must see a conversation waiting for its user. A
            # branch waits for nothing until its state is loaded.
            self.s.state, self.s.waiting_for = State.WAITING, "user"
        self._answer: str | None = None
        self._end_requested = False
        self._turn_head: str | None = None  # the transcript the current model step read
        self._upsert_once_per_task = inp.revision >= UPSERT_ONCE_PER_TASK
        self._upsert_due = False
        self._quick_evaluations_local = inp.revision >= QUICK_EVALUATIONS_LOCAL
        self._scores_in_memo = inp.revision >= SCORES_IN_MEMO
        self._cancel_ends_conversation = inp.revision >= CANCEL_ENDS_CONVERSATION
        self._config_by_ref = inp.revision >= CONFIG_BY_REF
        self._local_quick_tools = inp.revision >= LOCAL_QUICK_TOOLS
        self._tool_stores_result = inp.revision >= TOOL_STORES_RESULT
        self._upserts_held = False  # while a step's calls all run inside the workflow task
        self._evaluator_ids = evaluations.evaluator_ids(inp.agent, inp.evaluators)
        self._catalog = inp.catalog  # with what this run has read of the whole one since
        self._evaluating: list[asyncio.Task[None]] = []
        # The agent's MCP tools, listed by this run when it first needs them (not carried
        # across continue-as-new: a new run lists them again).
        self._mcp_listed: list[McpListed] | None = None
        self._mcp_tools: dict[str, McpListed] = {}
        self._scored_upto = len(self.s.stack)  # entries before were scored by an earlier run
        self._handlers: dict[State, Callable[[], Awaitable[None]]] = {
            **{s: self._agent_turn for s in MODEL_INPUT_STATES},
            State.TOOL_CALL: self._run_calls,
            State.AGENT_CALL: self._run_calls,
            State.ASSISTANT_MESSAGE: self._reply,
            State.WAITING: self._wait,
        }

    @property
    def agent(self) -> AgentSpec:
        return self.inp.agent

    @workflow.run
    async def run(self, inp: ConversationInput) -> ConversationResult:
        with tracing.agent_span(inp.agent.id, inp.model or inp.agent.model):
            return await self._run(inp)

    async def _run(self, inp: ConversationInput) -> ConversationResult:
        if not self._upsert_once_per_task:
            workflow.upsert_search_attributes([search.AGENT.value_set(inp.agent.id)])
        if inp.branch is not None and inp.resume is None:
            await self._load_branch(inp.branch)
        elif inp.resume is None:
            self._open()
        self._publish()
        while self.s.state not in TERMINAL:
            if self.s.state in MODEL_INPUT_STATES and self._continue_as_new_due():
                await self._finish_evaluations()
                self._continue_as_new()
            await self._handlers[self.s.state]()
        await self._finish_evaluations()
        # A send_message or answer update waiting for this last turn returns before we do.
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The last evaluations may have ended after the last step's upsert.
        self._upsert_due = self._upsert_once_per_task
        self._upsert_changes()
        if self._scores_in_memo and (means := evaluations.means(self.s.stack)):
            workflow.upsert_memo({SCORES_MEMO: means})
        return self._result()

    async def _load_branch(self, branch: BranchStart) -> None:
        """Start from the state the source had at the branch point: stored by whoever
        started the branch, so the input stays small however long the source ran."""
        origin = branch.origin
        self.s = await workflow.execute_activity(
            LOAD_STATE,
            branch.state_ref,
            result_type=ConversationState,
            summary=f"state of {origin.source} after step {origin.step}",
            **LOCAL_ACTIVITY,
        )
        self._scored_upto = len(self.s.stack)

    def _open(self) -> None:
        self.s.head = self.inp.context_head
        if self.inp.message is not None:
            user = self._node(State.USER_MESSAGE, text=self.inp.message)
            self._push(State.USER_MESSAGE, ref=user.ref(), preview=preview(self.inp.message))
            self._stage(user)
        elif self.inp.interactive:
            self._wait_for("user")
        else:
            raise ApplicationError("a one-shot conversation needs a message", non_retryable=True)

    # --- queries --------------------------------------------------------------------------

    @workflow.query
    def stack(self) -> list[StackEntry]:
        return self.s.stack

    @workflow.query
    def state(self) -> ConversationStatus:
        return ConversationStatus(
            conversation_id=workflow.info().workflow_id,
            agent_id=self.agent.id,
            state=self.s.state,
            step=self.s.step,
            usage=self.s.usage,
            reason=self.s.reason,
            waiting_for=self.s.waiting_for,
            penalties=self.s.penalties,
        )

    @workflow.query
    def overrides(self) -> Overrides:
        return self.s.overrides

    @workflow.query(name=SYNC_STATUS_QUERY)
    def sync_status(self) -> SyncStatus:
        """The barriers met so far and the score on the run's metric (Propagation)."""
        return propagation.status(self.s, self.inp.propagation)

    @workflow.query
    def branch_base(self) -> BranchBase:
        """Everything a branch of this conversation starts from."""
        return BranchBase(input=self.inp.model_copy(update={"resume": None}), state=self.s)

    # --- updates: messages, answers and runtime overrides ---------------------------------

    @workflow.update
    async def send_message(self, text: str) -> TurnResult:
        start = len(self.s.stack)
        self.s.inbox.append(text)
        await workflow.wait_condition(
            lambda: (
                self.s.state in TERMINAL
                or (self._waiting("user") and not self.s.inbox and len(self.s.stack) > start)
            )
        )
        return self._turn_result(start)

    @send_message.validator
    def _check_send_message(self, text: str) -> None:
        refuse(validators.send_message_problem(self.s, self.inp.interactive, text))

    @workflow.update
    async def answer(self, text: str) -> TurnResult:
        """A person answers for the human agent whose turn it is."""
        start = len(self.s.stack)
        self._answer = text
        await workflow.wait_condition(
            lambda: self._answer is None and (self.s.state in TERMINAL or self._waiting("user"))
        )
        return self._turn_result(start)

    @answer.validator
    def _check_answer(self, text: str) -> None:
        refuse(validators.answer_problem(self.s, self.agent, text, self._answer is not None))

    @workflow.update
    async def end(self) -> None:
        """Close an interactive conversation that waits for its user."""
        self._end_requested = True
        await workflow.wait_condition(lambda: self.s.state in TERMINAL)

    @end.validator
    def _check_end(self) -> None:
        refuse(validators.end_problem(self.s))

    @workflow.update
    async def set_behavior(self, persona: str | None) -> Overrides:
        """Apply a persona (or 'none') from the next step; None returns to agents.yml."""
        return self._override(persona=persona)

    @set_behavior.validator
    def _check_behavior(self, persona: str | None) -> None:
        refuse(validators.behavior_problem(self.s, self.inp.catalog, persona))

    @workflow.update
    async def set_tools(self, tools: list[str] | None) -> Overrides:
        """Replace the agent's allowed tools from the next step; None returns to agents.yml."""
        return self._override(tools=tools)

    @set_tools.validator
    def _check_tools(self, tools: list[str] | None) -> None:
        refuse(validators.tools_problem(self.s, self.inp.catalog, tools))

    @workflow.update
    async def set_model(self, model: str | None) -> Overrides:
        """Use another model from the next step; None returns to the configured one."""
        return self._override(model=model)

    @set_model.validator
    def _check_model(self, model: str | None) -> None:
        refuse(validators.model_problem(self.s, self.agent, model))

    @workflow.update(name=RELEASE_UPDATE)
    async def release(self, release: Release) -> Overrides:
        """Go on past a propagation barrier; a pushed config's knobs override the agent's
        from the next step, recorded like any other override."""
        propagation.released(self.s, release)
        if release.push is not None:
            return self._override(**self.s.overrides.pushed(release.push).model_dump())
        return self.s.overrides

    @release.validator
    def _check_release(self, release: Release) -> None:
        refuse(validators.release_problem(self.s, self.inp.catalog, self.agent, release))

    @workflow.update
    async def branch(self, child: BranchChild) -> str:
        """Start a branch of this conversation as its child: it shows in this run's
        Relationships and, abandoned on close, outlives it. The caller stored its state."""
        assert child.input.branch is not None
        origin = child.input.branch.origin
        try:
            await workflow.start_child_workflow(
                ConversationWorkflow.run,
                child.input,
                id=child.workflow_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=branching.branch_search_attributes(child.input.agent.id, origin),
                memo=branching.branch_memo(origin),
                static_summary=branching.branch_summary(origin, child.input.message),
                static_details=conversation_details(child.input),
            )
        except WorkflowAlreadyStartedError:
            raise ApplicationError(
                f"{child.workflow_id} exists", type=BRANCH_TAKEN, non_retryable=True
            ) from None
        return child.workflow_id

    @branch.validator
    def _check_branch(self, child: BranchChild) -> None:
        refuse(None if child.input.branch is not None else "a branch needs its start")

    def _end_if_cancelled(self, err: ActivityError | ChildWorkflowError) -> None:
        """A cancel request reaches the call it interrupts as that call's error; from
        revision 4 it ends the conversation as cancelled (the error raised on makes the SDK
        cancel the run) instead of being read as the call's failure."""
        if self._cancel_ends_conversation and is_cancelled_exception(err):
            raise err

    def _override(self, **changes: object) -> Overrides:
        self.s.overrides = self.s.overrides.model_copy(update=changes)
        self._publish()
        return self.s.overrides

    def _waiting(self, who: WaitingFor) -> bool:
        return validators.waiting_for(self.s, who)

    def _turn_result(self, start: int) -> TurnResult:
        entries = self.s.stack[start:]
        reply = next((e for e in reversed(entries) if e.kind is State.ASSISTANT_MESSAGE), None)
        return TurnResult(
            entries=entries,
            reply_ref=reply.ref if reply else None,
            reply_preview=reply.preview if reply else "",
            state=self.s.state,
            reason=self.s.reason,
        )

    # --- state handlers -------------------------------------------------------------------

    async def _agent_turn(self) -> None:
        agent = self.agent
        if limit := limit_reached(agent.limits, self.s.step, self.s.usage):
            self._finish(*limit)
            return
        barrier = propagation.due_round(self.inp.propagation, self.s)
        if barrier is not None and agent.type != "human":
            await self._meet_barrier(barrier)
        self.s.step += 1
        if agent.type == "human":
            await self._store_pending(f"{agent.id}'s turn")  # the person reads it in full
            self._move(Event.HUMAN_TURN)
            self._wait_for("human")
            return
        result = await self._step()
        if result is None:
            return
        self.s.model_steps += 1
        self.s.pending = []
        self.s.head = result.ref
        self.s.usage += result.usage
        overrides = self.s.overrides if self.s.overrides.active() else None
        if not result.tool_calls:
            self._move(Event.MODEL_TEXT)
            self._push(
                State.ASSISTANT_MESSAGE,
                ref=result.ref,
                preview=result.text_preview,
                usage=result.usage,
                overrides=overrides,
            )
            await self._after_step()
            return
        delegating = any(call.name == DELEGATE for call in result.tool_calls)
        self._move(Event.MODEL_DELEGATE if delegating else Event.MODEL_TOOL_CALLS)
        self.s.calls = result.tool_calls
        for n, call in enumerate(result.tool_calls):
            self._push(
                State.AGENT_CALL if call.name == DELEGATE else State.TOOL_CALL,
                ref=result.ref,
                preview=_call_preview(call),
                tool_name=call.name,
                tool_call_id=call.id,
                usage=result.usage if n == 0 else None,  # one model step, counted once
                overrides=overrides,
            )
        await self._after_step()

    async def _mcp_listings(self) -> list[McpListed] | None:
        """The agent's MCP tools, listed once per run (a listing a server fails ends the
        conversation with its reason: the agent cannot work without the tools it names);
        None when it has ended."""
        if self._mcp_listed is not None:
            return self._mcp_listed
        requests = mcp.listing_requests(self.agent, self.inp.store_id)
        try:
            listed = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        MCP_LIST,
                        request,
                        result_type=McpListed,
                        summary=f"{request.server}: list tools",
                        **mcp.list_options(self.inp.catalog.mcp_server(request.server)),
                        **routing.tool_call(self.inp.routing),
                    )
                    for request in requests
                )
            )
        except ActivityError as err:
            self._end_if_cancelled(err)
            self._finish(FinishReason.ERROR, f"MCP tools could not be listed: {root_cause(err)}")
            return None
        self._mcp_listed = list(listed)
        self._mcp_tools = mcp.tools_by_name(self._mcp_listed)
        return self._mcp_listed

    async def _meet_barrier(self, number: int) -> None:
        """Wait at propagation barrier `number` with this conversation's score so far, every
        evaluation of its steps in, until the learning run releases it."""
        assert self.inp.propagation is not None
        await self._finish_evaluations()
        self.s.sync_points.append(propagation.point(number, self.s, self.inp.propagation.metric))
        await workflow.wait_condition(lambda: self.s.sync_points[-1].released)

    async def _step(self) -> StepResult | None:
        """Run the agent's model or rules on the transcript; None if the step failed."""
        agent, overrides = self.agent, self.s.overrides
        self._turn_head = self.s.head
        assert self.s.head is not None
        listed = await self._mcp_listings()
        if listed is None:
            return None
        model = self.inp.step_model(overrides)
        try:
            catalog = await self._catalog_with(persona=overrides.persona)
        except ActivityError as err:
            self._end_if_cancelled(err)
            self._finish(FinishReason.ERROR, f"agent step failed: {root_cause(err)}")
            return None
        config = self.inp.config(overrides, catalog)
        request = StepInput.model_validate(
            {
                "conversation_id": workflow.info().workflow_id,
                "agent_id": agent.id,
                "step": self.s.step,
                "model": model,
                "head": self.s.head,
                "pending": self.s.pending,
                **step_extras(agent, config),
                "store_id": self.inp.store_id,
                **self._config_fields(config),
                **({"mcp_listings": [listing.ref for listing in listed]} if listed else {}),
            }
        )
        rules = agent.type == "rule_based"
        main = workflow.info().task_queue
        queue = routing.model_step(None if rules else self.inp.routing, model, main)
        try:
            result: StepResult = await workflow.execute_activity(
                RULE_STEP if rules else LLM_STEP,
                request,
                result_type=StepResult,
                summary=f"{agent.id} · {'rules' if rules else model} · step {self.s.step}",
                **(LOCAL_ACTIVITY if rules else LLM_ACTIVITY),
                **queue,
            )
        except ActivityError as err:
            self._end_if_cancelled(err)
            self._finish(FinishReason.ERROR, f"agent step failed: {root_cause(err)}")
            return None
        if request.config is not None:  # stored by the step: later steps send the ref
            self.s.configs_sent.append(config.ref)
        return result

    async def _catalog_with(
        self, agent_id: str | None = None, persona: str | None = None
    ) -> Catalog:
        """The catalog with `agent_id`'s spec and `persona`'s text in it: a slim one
        (CATALOG_BY_REF) reads what it lacks from the whole one in the store, once a run."""
        part = catalog_part(self._catalog, agent_id, persona)
        if part is not None:
            read: Catalog = await workflow.execute_local_activity(
                READ_CATALOG,
                part,
                result_type=Catalog,
                summary=", ".join([*part.agents, *part.personas]),
                **READ_CATALOG_ACTIVITY,
            )
            self._catalog = self._catalog.with_part(read)
        return self._catalog

    def _config_fields(self, config: AgentConfig) -> dict[str, object]:
        """How a step names its config: by ref, with the config itself the first time this
        conversation runs it (the step stores it, as it stores `pending`), so the history
        holds each config once; before CONFIG_BY_REF, as knobs inline."""
        if not self._config_by_ref:
            return config.model_dump(include=set(KNOBS))
        ref = config.ref
        return {"config_ref": ref, "config": None if ref in self.s.configs_sent else config}

    async def _run_calls(self) -> None:
        if await self._mcp_listings() is None:  # a branch that starts with calls to make
            return
        self.s.step += 1
        calls, self.s.calls = self.s.calls, []
        step = StepCalls(alone=self._tool_stores_result and len(calls) == 1)
        # Calls of one model step run concurrently; results keep the order of the calls.
        # When all of them run inside this workflow task, the task goes on through them, so
        # the search attributes wait and go out once, with the state the task ends in.
        self._upserts_held = all(self._runs_local(call) for call in calls)
        try:
            results = await asyncio.gather(
                *(self._call(n, call, step) for n, call in enumerate(calls))
            )
        finally:
            self._upserts_held = False
        if self._upsert_due:  # what waited for the local calls, when this task next waits
            asyncio.get_running_loop().call_soon(self._upsert_changes)
        self._move(Event.CHILD_DONE if self.s.state is State.AGENT_CALL else Event.TOOLS_DONE)
        for call, result in zip(calls, results, strict=True):
            kind = State.AGENT_RESULT if result.delegated else State.TOOL_RESULT
            outcome = result.outcome
            node = result.stored_node
            if node is None:
                node = self._node(
                    kind,
                    tool_call_id=call.id,
                    tool_name=call.name,
                    result_ref=result.child_reply_ref if result.delegated else outcome.result_ref,
                    text=outcome.text,
                    child_id=result.child_id,
                )
                self._stage(node)
            else:
                self.s.head = node.ref()
            if result.child_usage is not None:
                self.s.usage += result.child_usage
            self.s.penalties += result.penalty
            self._push(
                kind,
                ref=node.ref(),
                preview=outcome.preview,
                tool_name=call.name,
                tool_call_id=call.id,
                status=outcome.status,
                cached=outcome.cached,
                penalty=result.penalty,
                child_id=result.child_id,
                usage=result.child_usage,
            )
        await self._after_step()

    async def _call(self, n: int, call: ToolCallRequest, step: StepCalls) -> CallResult:
        delegated = call.name == DELEGATE
        listing = self._mcp_tools.get(call.name)
        if listing is None and (
            refusal := call_refusal(call.name, self._allowed_tools(), self.agent.id)
        ):
            return CallResult(_inline("error", {"error": refusal}), delegated=delegated)
        if delegated:
            return await self._delegate(call, step.child_ids)
        penalty = False
        if listing is None:
            info = self.inp.catalog.tool(call.name)
        else:
            info = mcp.tool_info(call.name, mcp.server_info(self.inp.catalog, listing))
        if not info.side_effect_free:
            # Runs before the first await, so calls of one step are checked in call order.
            policy = self.agent.dedup or self.inp.catalog.dedup
            skipped, penalty = duplicate_verdict(
                call.name, call.arguments, self.s.step, self.s.seen_calls, step.keys, policy
            )
            if skipped is not None:
                return CallResult(_inline("skipped", {"skipped": skipped}))
        run = workflow.info()
        key = business_key(run.workflow_id, run.first_execution_run_id, self.s.step, n)
        request: ToolInput | McpCallInput
        if listing is None:
            activity_name, request = (
                RUN_TOOL,
                ToolInput(
                    conversation_id=run.workflow_id,
                    agent_id=self.agent.id,
                    step=self.s.step,
                    call=call,
                    call_key=key,
                    result_parent=self.s.head if step.alone else None,
                ),
            )
        else:
            activity_name, request = (
                MCP_CALL,
                mcp.call_input(
                    listing,
                    conversation_id=run.workflow_id,
                    agent_id=self.agent.id,
                    step=self.s.step,
                    call_id=call.id,
                    name=call.name,
                    arguments=call.arguments,
                    business_key=key,
                    info=info,
                ),
            )
        summary = _call_preview(call, 100)
        try:
            outcome: ToolOutcome
            if isinstance(request, ToolInput) and self._runs_local(call):
                local: LocalActivityOptions = tool_activity(info)
                outcome = await workflow.execute_local_activity(
                    RUN_TOOL, request, result_type=ToolOutcome, summary=summary, **local
                )
            else:
                outcome = await workflow.execute_activity(
                    activity_name, request, result_type=ToolOutcome, summary=summary,
                    **tool_activity(info), **routing.tool_call(self.inp.routing),
                )  # fmt: skip
        except ActivityError as err:
            self._end_if_cancelled(err)
            # The model reads the failure and decides; the conversation goes on.
            cause = root_cause(err)
            status: ToolStatus = "timeout" if isinstance(err.cause, ActivityTimeout) else "error"
            outcome = _inline(status, {"error": f"tool {call.name} failed: {cause}"})
            return CallResult(outcome, penalty=penalty)
        stored = None
        if isinstance(request, ToolInput) and request.result_parent is not None:
            stored = request.result_node(outcome)
        return CallResult(outcome, penalty=penalty, stored_node=stored)

    def _runs_local(self, call: ToolCallRequest) -> bool:
        return (
            self._local_quick_tools
            and call.name != DELEGATE
            and call.name not in self._mcp_tools
            and runs_local(self.inp.catalog.tool(call.name), self.inp.routing)
        )

    async def _delegate(self, call: ToolCallRequest, taken: set[str]) -> CallResult:
        def refused(message: str) -> CallResult:
            return CallResult(_inline("error", {"error": message}), delegated=True)

        try:
            args = DelegateArgs.model_validate_json(call.arguments or "{}")
        except ValidationError as exc:
            return refused(invalid_arguments(exc))
        known = self._catalog.agent_names()
        if args.agent_id not in known:
            return refused(f"unknown agent '{args.agent_id}'; known agents: {', '.join(known)}")
        if refusal := delegation_refusal(self.agent, self.inp.lineage, args.agent_id):
            return refused(refusal)
        try:
            catalog = await self._catalog_with(agent_id=args.agent_id)
        except ActivityError as err:
            self._end_if_cancelled(err)
            return refused(f"delegation to {args.agent_id} failed: {root_cause(err)}")
        target = catalog.agent(args.agent_id)
        assert target is not None  # a name the catalog knows has its spec, read if need be
        child_id = child_workflow_id(workflow.info().workflow_id, self.s.step, target.id, taken)
        child_inp = child_input(self.inp, target, args.message, self._turn_head, catalog)
        try:
            with tracing.delegation_span(call.id, target.id, child_id):
                result: ConversationResult = await workflow.execute_child_workflow(
                    ConversationWorkflow.run,
                    child_inp,
                    id=child_id,
                    search_attributes=child_search_attributes(target),
                    static_summary=child_summary(target, args.message),
                    static_details=conversation_details(child_inp),
                )
        except ChildWorkflowError as err:
            self._end_if_cancelled(err)
            return refused(f"delegation to {target.id} failed: {root_cause(err)}")
        summary = {"agent_id": target.id, "status": result.reason.value}
        status: ToolStatus = "ok" if result.reason is FinishReason.DONE else "error"
        return CallResult(
            ToolOutcome(
                status=status,
                text=json.dumps(summary),
                preview=preview(f"{target.id}: {result.reply_preview}"),
            ),
            delegated=True,
            child_id=child_id,
            child_reply_ref=result.reply_ref,
            child_usage=result.usage,
        )

    async def _reply(self) -> None:
        if self.inp.interactive:
            self._move(Event.REPLY_INTERACTIVE)
            self._wait_for("user")
            return
        self._move(Event.REPLY_ONE_SHOT)
        self.s.reason = FinishReason.DONE
        self._push(State.FINISHED, reason=FinishReason.DONE)
        self._publish()

    async def _wait(self) -> None:
        if self.s.waiting_for == "human":
            await self._wait_for_human()
        else:
            await self._wait_for_user()

    async def _wait_for_user(self) -> None:
        # Let the update that delivered the last turn return, then restart if history is long.
        await workflow.wait_condition(
            lambda: bool(self.s.inbox) or self._end_requested or workflow.all_handlers_finished()
        )
        if not self.s.inbox and not self._end_requested and self._continue_as_new_due():
            await self._finish_evaluations()
            self._continue_as_new()
        await workflow.wait_condition(lambda: bool(self.s.inbox) or self._end_requested)
        self.s.waiting_for = None
        if not self.s.inbox:
            self._move(Event.USER_ENDS)
            self.s.reason = FinishReason.DONE
            self._push(State.FINISHED, reason=FinishReason.DONE, preview="ended by the user")
            self._publish()
            return
        text = self.s.inbox.pop(0)
        self._move(Event.USER_SENDS)
        user = self._node(State.USER_MESSAGE, text=text)
        self._push(State.USER_MESSAGE, ref=user.ref(), preview=preview(text))
        self._stage(user)
        self._publish()

    async def _wait_for_human(self) -> None:
        timeout = self.agent.human_timeout_s
        try:
            await workflow.wait_condition(
                lambda: self._answer is not None,
                timeout=timedelta(seconds=timeout),
                timeout_summary=f"{self.agent.id} answers",
            )
        except TimeoutError:
            self.s.waiting_for = None
            self._finish(FinishReason.TIMEOUT, f"no answer from {self.agent.id} in {timeout:g} s")
            return
        assert self._answer is not None
        # Stored now: the conversation may end before a model step would store it.
        self._stage(self._node(State.ASSISTANT_MESSAGE, text=self._answer))
        await self._store_pending(f"{self.agent.id} answered")
        self.s.waiting_for = None
        self._move(Event.HUMAN_ANSWERS)
        self._push(State.ASSISTANT_MESSAGE, ref=self.s.head, preview=preview(self._answer))
        self._answer = None
        await self._after_step()

    # --- continue-as-new ------------------------------------------------------------------

    def _continue_as_new_due(self) -> bool:
        if not workflow.all_handlers_finished():
            return False
        info = workflow.info()
        limit = self.inp.continue_as_new_events
        return info.is_continue_as_new_suggested() or (
            limit is not None and info.get_current_history_length() >= limit
        )

    def _continue_as_new(self) -> NoReturn:
        self._upsert_due = False  # the next run shows its own state from its first task
        state = self.s.model_copy(update={"runs": self.s.runs + 1})
        workflow.continue_as_new(self.inp.model_copy(update={"resume": state}))

    # --- bookkeeping ----------------------------------------------------------------------

    def _allowed_tools(self) -> list[str]:
        override = self.s.overrides.tools
        return self.agent.tools if override is None else override

    def _wait_for(self, who: WaitingFor) -> None:
        self.s.waiting_for = who
        self._push(
            State.WAITING,
            waiting_for=who,
            preview=f"waiting for {'the user' if who == 'user' else self.agent.id}",
        )
        self._publish()

    def _node(self, kind: State, **fields: object) -> ContentNode:
        return ContentNode.model_validate(
            {
                "kind": kind,
                "parent": self.s.head,
                "conversation_id": workflow.info().workflow_id,
                "step": self.s.step,
                "agent_id": self.agent.id,
                **fields,
            }
        )

    async def _store_pending(self, summary: str) -> None:
        """Store staged nodes now, for turns that no agent step follows."""
        await workflow.execute_activity(
            STORE_NODES,
            StoreNodesInput(nodes=self.s.pending),
            summary=summary,
            **LOCAL_ACTIVITY,
        )
        self.s.pending = []

    def _stage(self, node: ContentNode) -> None:
        """Queue a node for the next agent step to store, and make it the transcript head."""
        self.s.pending.append(node)
        self.s.head = node.ref()

    def _move(self, event: Event) -> None:
        self.s.state = fsm_transition(self.s.state, event)

    def _push(self, kind: State, **fields: object) -> None:
        entry = StackEntry.model_validate(
            {"step": self.s.step, "kind": kind, "agent_id": self.agent.id, **fields}
        )
        self.s.stack.append(entry)

    def _finish(self, reason: FinishReason, detail: str) -> None:
        self._move(Event.LIMIT)
        self.s.reason = reason
        self._push(State.FINISHED, reason=reason, preview=preview(detail))
        self._publish()

    async def _after_step(self) -> None:
        """Runs once after every step that added to the stack (a model or rule step, the
        results of its calls, a person's answer): starts the evaluations of what it added,
        which run beside the conversation, and keeps the Web UI current."""
        self.s.checkpoints.append(branching.checkpoint(self.s))
        self._start_evaluations(flush=False)
        self._publish()

    def _start_evaluations(self, *, flush: bool) -> None:
        """Score what the steps since the last call added, in one activity. Tool results
        wait for the model step that reads them unless `flush`, so one activity scores both."""
        added, start = self.s.stack[self._scored_upto :], self._scored_upto
        if not self._evaluator_ids or not added:
            return
        if not flush and evaluations.only_results(added):
            return
        self._scored_upto = len(self.s.stack)
        infos = [info for i in self._evaluator_ids if (info := self.inp.catalog.evaluator(i))]
        if found := evaluations.targets(added, infos):
            scored = [(start + index, ids) for index, ids in found]
            local = self._quick_evaluations_local and evaluations.local(infos)
            self._evaluating.append(asyncio.create_task(self._evaluate(scored, local=local)))

    async def _finish_evaluations(self) -> None:
        """Start what waits to be scored, then wait for every evaluation to end."""
        self._start_evaluations(flush=True)
        if self._evaluating:
            await asyncio.gather(*self._evaluating)

    async def _evaluate(self, scored: list[tuple[int, list[str]]], *, local: bool) -> None:
        items = []
        for index, ids in scored:
            entry = self.s.stack[index]
            assert entry.ref is not None
            items.append(
                EvalItem(
                    target=entry.ref,
                    step=entry.step,
                    evaluators=ids,
                    tool_status=entry.status,
                    node=next((n for n in self.s.pending if n.ref() == entry.ref), None),
                    question=evaluations.question_ref(self.s.stack[: index + 1]),
                )
            )
        request = EvalRequest(
            conversation_id=workflow.info().workflow_id,
            agent_id=self.agent.id,
            items=items,
            usage=self.s.usage,
        )
        steps = sorted({item.step for item in items})
        summary = f"evaluate step {', '.join(map(str, steps))}"
        outcomes_type = list[list[EvalOutcome]]
        try:
            if local:
                results: list[list[EvalOutcome]] = await workflow.execute_local_activity(
                    EVALUATE,
                    request,
                    result_type=outcomes_type,
                    summary=summary,
                    **QUICK_EVAL_ACTIVITY,
                )
            else:
                results = await workflow.execute_activity(
                    EVALUATE, request, result_type=outcomes_type, summary=summary, **EVAL_ACTIVITY
                )
        except ActivityError as err:
            failure = f"evaluation failed: {root_cause(err)}"
            versions = {e.id: e.version for e in self.inp.catalog.evaluators}
            results = [
                [
                    EvalOutcome(evaluator_id=i, version=versions.get(i, "?"), error=failure)
                    for i in item.evaluators
                ]
                for item in items
            ]
        for (index, _), outcomes in zip(scored, results, strict=True):
            for outcome in outcomes:  # the judges' spending is not the agent's: kept apart
                if outcome.usage is not None:
                    self.s.eval_usage += outcome.usage
            if self.inp.rewards is not None:
                outcomes = await asyncio.gather(*(self._reward(index, o) for o in outcomes))
            entry = self.s.stack[index]
            self.s.stack[index] = entry.model_copy(
                update={"evaluations": [*entry.evaluations, *outcomes]}
            )
        # P2eScore goes out with the next step's upsert (or the last one): a write of its
        # own for every evaluation would cost more than the evaluation.
        workflow.set_current_details(current_details(self.agent.id, self.s))

    async def _reward(self, index: int, outcome: EvalOutcome) -> EvalOutcome:
        """Pay what `outcome` earns under the reward policy, once: the transfer id is the
        business key of (conversation, step, evaluator), so a retry, a repeated evaluation
        or a replay names the same transfer."""
        policy = self.inp.rewards
        if policy is None:
            return outcome
        due = rewards.reward_due(policy, outcome, self.s.rewarded)
        if due is None:
            return outcome
        if isinstance(due, str):
            skipped = RewardOutcome(status="skipped", amount=Decimal(0), reason=due)
            return outcome.model_copy(update={"reward": skipped})
        self.s.rewarded += due  # reserved now: other evaluations may pay meanwhile
        step = self.s.stack[index].step
        run = workflow.info()
        request = TransferRequest(
            transfer_id=business_key(
                run.workflow_id, run.first_execution_run_id, step, f"reward-{outcome.evaluator_id}"
            ),
            payer=policy.payer,
            payee=self.agent.id,
            amount=due,
            reason=f"{outcome.evaluator_id} scored {outcome.value:.2f} on step {step}",
            reference=run.workflow_id,
            kind="reward",
        )
        try:
            await workflow.execute_activity(
                LEDGER_REWARD,
                request,
                result_type=Receipt,
                summary=f"reward {self.agent.id} {due} · {outcome.evaluator_id} step {step}",
                **LEDGER_ACTIVITY,
            )
        except ActivityError as err:
            self.s.rewarded -= due
            failed = RewardOutcome(status="failed", amount=due, reason=root_cause(err))
            return outcome.model_copy(update={"reward": failed})
        paid = RewardOutcome(status="paid", amount=due, transfer_id=request.transfer_id)
        return outcome.model_copy(update={"reward": paid})

    def _publish(self) -> None:
        """Keep the Web UI's view of the conversation current: its details now, its search
        attributes once this workflow task has done its work (a visibility write each)."""
        s = self.s
        workflow.set_current_details(current_details(self.agent.id, s))
        if not self._upsert_once_per_task:
            workflow.upsert_search_attributes(
                [search.STATE.value_set(s.state.value), search.STEP.value_set(s.step)]
            )
        elif not self._upsert_due:
            self._upsert_due = True
            # Runs when the workflow next waits, still in this task.
            asyncio.get_running_loop().call_soon(self._upsert_changes)

    def _upsert_changes(self) -> None:
        if not self._upsert_due:
            return
        if self._upserts_held:  # the step's local calls run: _run_calls calls again after
            return
        self._upsert_due = False
        wanted = search.conversation_attributes(self.agent.id, self.s)
        if updates := search.changed_attributes(workflow.info().typed_search_attributes, wanted):
            workflow.upsert_search_attributes(updates)

    def _result(self) -> ConversationResult:
        stack = self.s.stack
        reply = next((e for e in reversed(stack) if e.kind is State.ASSISTANT_MESSAGE), None)
        if self.s.reason is None:
            raise ApplicationError("conversation ended without a finish reason", non_retryable=True)
        return ConversationResult(
            conversation_id=workflow.info().workflow_id,
            agent_id=self.agent.id,
            reason=self.s.reason,
            reply_ref=reply.ref if reply else None,
            reply_preview=reply.preview if reply else (stack[-1].preview if stack else ""),
            steps=self.s.step,
            usage=self.s.usage,
            stack=stack,
            penalties=self.s.penalties,
            score=evaluations.score(stack),
            eval_usage=self.s.eval_usage,
        )


def _inline(status: ToolStatus, content: dict[str, str]) -> ToolOutcome:
    """An outcome decided in the workflow: kept inline, no activity, nothing stored."""
    text = json.dumps(content)
    return ToolOutcome(status=status, text=text, preview=preview(text))


def _call_preview(call: ToolCallRequest, limit: int = 160) -> str:
    if call.name == DELEGATE:
        try:
            args = json.loads(call.arguments)
            return preview(f"-> {args['agent_id']}: {args['message']}", limit)
        except (ValueError, KeyError, TypeError):
            pass
    return preview(f"{call.name}({call.arguments})", limit)
