"""Client-side operations on conversations, shared by the CLI, benchmarks and tests.

`ConversationClient` is the one place that names the workflow's queries and updates and
writes visibility queries: callers get typed handles and results, never strings to match.
"""

from __future__ import annotations

import secrets
from bisect import bisect_right, insort
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from p2engine.agents.registry import AgentRegistry
from p2engine.agents.scripted import PROVIDER as SCRIPTED_PROVIDER
from p2engine.contract.agent import AgentSpec
from p2engine.contract.errors import ConfigError, ConversationNotFound, InvalidInput, refuse
from p2engine.contract.evals import PairInput, PairOutcome, PairSide, RewardPolicy
from p2engine.contract.ids import name_problem
from p2engine.contract.inputs import message_problem
from p2engine.contract.models import (
    CURRENT_REVISION,
    BranchOrigin,
    Catalog,
    ConversationInput,
    ConversationResult,
    ConversationStatus,
    Overrides,
    StackEntry,
    TurnResult,
    preview,
)
from p2engine.contract.names import (
    BRANCH_MEMO,
    CONFIG_MEMO,
    CONVERSATION_WORKFLOW,
    EXECUTION_STATUSES,
    SCORES_MEMO,
    status_name,
)
from p2engine.contract.states import State
from p2engine.runtime.catalog import (
    check_agent,
    check_evaluators,
    load_catalog,
    resolve_agent,
    stored_catalog,
)
from p2engine.runtime.client import LazyClient, send_update
from p2engine.runtime.settings import Settings
from p2engine.store import store_for
from p2engine.workflows import search, validators
from p2engine.workflows.compare import CompareWorkflow
from p2engine.workflows.conversation import ConversationWorkflow
from p2engine.workflows.details import conversation_details
from p2engine.workflows.evaluations import evaluator_ids, question_ref

PREFIX = "conv-"
SCORED_SCAN = 10_000  # how many scored conversations `top_scored` ranks, newest first
BRANCHES_LISTED = 1_000  # the branches of one conversation `branches_of` lists

ConversationHandle = WorkflowHandle[ConversationWorkflow, ConversationResult]


def _handle(client: Client, workflow_id: str) -> ConversationHandle:
    return client.get_workflow_handle_for(ConversationWorkflow.run, workflow_id)


def conversation_id(name: str) -> str:
    return name if name.startswith(PREFIX) else PREFIX + name


def generated_name(agent_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # 32 random bits: thousands started within one second stay apart.
    return f"{agent_id}-{stamp}-{secrets.token_hex(4)}"


def check_model(model: str) -> None:
    """Refuse a model string litellm cannot route, or whose provider's API key this
    environment lacks, before a workflow starts with it. The scripted model needs no check
    (nor the seconds it takes to import litellm)."""
    if not model.strip() or not model.isprintable() or any(c.isspace() for c in model):
        raise InvalidInput(f"model must be a litellm model string, not {model!r}")
    if model.startswith(f"{SCRIPTED_PROVIDER}/"):
        return
    from p2engine.activities.llm import credentials_problem, model_problem

    refuse(model_problem(model))
    refuse(credentials_problem(model))


def check_message(text: str, what: str = "message") -> None:
    refuse(message_problem(text, what))


def check_changes(
    agent: AgentSpec,
    catalog: Catalog,
    *,
    message: str | None = None,
    model: str | None = None,
    tools: list[str] | None = None,
    persona: str | None = None,
) -> None:
    """The one client-side check of a message, model, tool list or persona that a run, a
    branch or an override brings: each refused in one line before anything is stored,
    started or sent. The workflow's update validators check the same again (all but the
    model's route, which needs litellm) for any other client."""
    if message is not None:
        check_message(message)
    refuse(validators.model_name_problem(agent, model))
    if model is not None:
        check_model(model)
    refuse(validators.unknown_tool_problem(catalog, tools))
    refuse(validators.persona_problem(catalog, persona))


def check_name(name: str, what: str = "--id") -> None:
    """A conversation name a user chooses: `conv-` may be given or left out."""
    refuse(name_problem(name.removeprefix(PREFIX), what))


def is_running(description: WorkflowExecutionDescription) -> bool:
    return description.status == WorkflowExecutionStatus.RUNNING


async def config_memo(execution: WorkflowExecution) -> str | None:
    """The id of the config a conversation started with (CONFIG_MEMO); None before ids."""
    found: str | None = await execution.memo_value(CONFIG_MEMO, None, type_hint=str)
    return found


async def branch_origin(execution: WorkflowExecution) -> BranchOrigin | None:
    """Where a branch started (BRANCH_MEMO); None for a conversation that is no branch."""
    origin: BranchOrigin | None = await execution.memo_value(
        BRANCH_MEMO, None, type_hint=BranchOrigin
    )
    return origin


async def _memo_scores(execution: WorkflowExecution) -> dict[str, float]:
    """The per-evaluator means a closed conversation keeps in its memo (SCORES_MEMO)."""
    means: dict[str, float] = await execution.memo_value(
        SCORES_MEMO, {}, type_hint=dict[str, float]
    )
    return means


def query_literal(value: str) -> str:
    """A string literal for a visibility query: the parser reads backslash escapes and a
    doubled quote, so an id can never end the literal and add a condition of its own."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


async def newest_started(
    found: list[WorkflowExecution], closed: AsyncIterator[WorkflowExecution], limit: int
) -> list[WorkflowExecution]:
    """`found` and enough of `closed` (newest closed first) to hold the `limit` newest by
    start: a run not read yet closed no later than the last one read, so it started no later
    either; once `limit` of those read started after that, none unread can be among them."""
    found = list(found)
    starts = sorted(e.start_time for e in found)
    async for execution in closed:
        found.append(execution)
        insort(starts, execution.start_time)
        horizon = execution.close_time
        if horizon is not None and len(starts) - bisect_right(starts, horizon) >= limit:
            break
    return found


async def _summary(execution: WorkflowExecution) -> ConversationSummary:
    attributes = execution.typed_search_attributes
    return ConversationSummary(
        id=execution.id,
        agent=attributes.get(search.AGENT),
        status=execution.status,
        state=attributes.get(search.STATE),
        step=attributes.get(search.STEP),
        started=execution.start_time,
        closed=execution.close_time,
        score=attributes.get(search.SCORE),
        scores=await _memo_scores(execution),
        branch_of=await branch_origin(execution),
    )


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation as visibility lists it, without asking its workflow."""

    id: str
    agent: str | None
    status: WorkflowExecutionStatus | None
    state: str | None
    step: int | None
    started: datetime
    closed: datetime | None
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)  # per evaluator, once closed
    branch_of: BranchOrigin | None = None


class ConversationClient(LazyClient):
    """Typed operations on conversations over one Temporal client.

    Without a client it connects on first use, so the CLI checks its input (agent, message,
    model) before reaching for Temporal, and a typo never starts the dev server.
    """

    def __init__(self, settings: Settings | None = None, client: Client | None = None) -> None:
        super().__init__(settings, client)
        # What the last start put in the store: its id, and the catalog (by revision and
        # JSON) named by its ref. Many starts from one catalog put it, and ask the id, once.
        self._store_id: str | None = None
        self._last_catalog: tuple[tuple[int, str], Catalog] | None = None

    # --- starting -------------------------------------------------------------------------

    def build_input(
        self,
        agent: AgentSpec | str,
        message: str | None,
        *,
        model: str | None = None,
        interactive: bool = False,
        catalog: Catalog | None = None,
        evaluators: list[str] | None = None,
    ) -> ConversationInput:
        """The checked input of a new conversation; `agent` is a spec or an id from the
        catalog, which is loaded (agents.yml read) once, here, when not given. `evaluators`
        score this conversation beside the agent's own."""
        catalog = catalog or load_catalog(self.settings)
        if isinstance(agent, str):
            agent = AgentRegistry(catalog.agents, self.settings.agents_file).get(agent)
        else:
            agent = resolve_agent(agent, self.settings)
        if message is not None:
            check_message(message)
        check_agent(agent, catalog, self.settings.agents_file)
        check_evaluators(evaluators or [], catalog, "--eval")
        if (policy := self.settings.rewards) is not None:
            check_evaluators(policy.evaluators, catalog, "rewards")
        for chosen in (model, agent.model):
            if chosen is not None:
                check_model(chosen)
        return ConversationInput(
            agent=agent,
            message=message,
            model=model,
            catalog=catalog,
            interactive=interactive,
            continue_as_new_events=self.settings.conversation.continue_as_new_events,
            revision=CURRENT_REVISION,
            evaluators=list(dict.fromkeys(evaluators or [])),
            rewards=self.settings.rewards,
            routing=self.settings.routing if self.settings.routing.routed else None,
        )

    async def start(
        self, inp: ConversationInput, *, name: str | None = None
    ) -> tuple[ConversationHandle, bool]:
        """Start a conversation, or attach to the one that already has this name.

        Returns the handle and whether a new run was started. A finished conversation is not
        started again: its id names that run for good. An interactive conversation may start
        without a message; it then waits for `send_message`.
        """
        if name is not None:
            check_name(name)
        if inp.rewards is not None:
            await self.check_payer(inp.rewards)
        inp = await self._stored(inp)
        workflow_id = conversation_id(name or generated_name(inp.agent.id))
        if name is not None:
            try:
                return await self.attach(workflow_id), False
            except ConversationNotFound:
                pass
        client = await self.temporal()
        handle = await client.start_workflow(
            ConversationWorkflow.run,
            inp,
            id=workflow_id,
            task_queue=self.settings.temporal.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search.start_attributes(inp),
            static_summary=preview(f"{inp.agent.id}: {inp.message or '(interactive)'}", 200),
            static_details=conversation_details(inp),
            memo={CONFIG_MEMO: inp.config().id},  # what its first step runs
        )
        return handle, True

    async def check_payer(self, policy: RewardPolicy) -> None:
        """A reward policy pays from a wallet that exists, or nothing starts."""
        from p2engine.ledger.errors import LedgerError
        from p2engine.runtime.settings import ledger_for

        payer = policy.payer or self.settings.ledger.treasury
        try:
            ledger = ledger_for(self.settings)
            try:
                await ledger.balance(payer)
            finally:
                await ledger.close()
        except LedgerError as exc:
            raise ConfigError(f"rewards: the payer wallet '{payer}' cannot pay: {exc}") from exc

    # --- comparing ------------------------------------------------------------------------

    async def pair(self, a: str, b: str, evaluator_id: str) -> PairInput:
        """What comparing two finished conversations' answers to the same question with a
        pairwise evaluator takes; refused in one line when they cannot be compared."""
        from p2engine.evals.config import load_evaluators
        from p2engine.evals.registry import get_pairwise

        load_evaluators(self.settings.evals_file)
        get_pairwise(evaluator_id)
        (a_side, a_question), (b_side, b_question) = [await self._answer(c) for c in (a, b)]
        async with store_for(self.settings) as store:
            asked = [(await store.get_node(q)).text or "" for q in (a_question, b_question)]
        if asked[0] != asked[1]:
            raise InvalidInput(
                f"{a_side.conversation_id} and {b_side.conversation_id} answer different "
                f"questions ({preview(asked[0], 40)!r} and {preview(asked[1], 40)!r})"
            )
        return PairInput(evaluator_id=evaluator_id, question=a_question, a=a_side, b=b_side)

    async def compare(self, pair: PairInput) -> PairOutcome:
        """Run the comparison in a CompareWorkflow, which draws the order the two are shown."""
        client = await self.temporal()
        outcome: PairOutcome = await client.execute_workflow(
            CompareWorkflow.run,
            pair,
            id=f"compare-{pair.evaluator_id}-{secrets.token_hex(4)}",
            task_queue=self.settings.temporal.task_queue,
            static_summary=(
                f"{pair.evaluator_id}: {pair.a.conversation_id} vs {pair.b.conversation_id}"
            ),
        )
        return outcome

    async def _answer(self, conversation: str) -> tuple[PairSide, str]:
        """A finished conversation's final answer and the ref of the question it answers."""
        handle, description = await self.describe(conversation)
        if description.status != WorkflowExecutionStatus.COMPLETED:
            state = status_name(description.status)
            raise InvalidInput(f"{handle.id} is {state}; compare finished conversations")
        result: ConversationResult = await handle.result()
        stack = result.stack
        for index in range(len(stack) - 1, -1, -1):
            entry = stack[index]
            if entry.kind is State.ASSISTANT_MESSAGE and entry.ref is not None:
                if (question := question_ref(stack[: index + 1])) is not None:
                    return PairSide(conversation_id=handle.id, ref=entry.ref), question
                break
        raise InvalidInput(f"{handle.id} has no answer to a question to compare")

    # --- finding --------------------------------------------------------------------------

    async def describe(
        self, conversation: str
    ) -> tuple[ConversationHandle, WorkflowExecutionDescription]:
        """Find a conversation by id, accepting the id with or without the `conv-` prefix."""
        client = await self.temporal()
        for candidate in dict.fromkeys([conversation, conversation_id(conversation)]):
            handle = _handle(client, candidate)
            try:
                return handle, await handle.describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
        raise ConversationNotFound(f"no conversation '{conversation}'")

    async def _stored(self, inp: ConversationInput) -> ConversationInput:
        """`inp` naming the artifact store it is started on, and carrying a slim catalog
        whose whole is put there (CATALOG_BY_REF)."""
        key = (inp.revision, inp.catalog.model_dump_json())
        if self._store_id is None or self._last_catalog is None or self._last_catalog[0] != key:
            async with store_for(self.settings) as store:
                self._store_id = await store.identity()
                self._last_catalog = key, await stored_catalog(store, inp.catalog, inp.revision)
        catalog = self._last_catalog[1]
        slim = catalog.for_agent(inp.agent, evaluator_ids(inp.agent, inp.evaluators))
        update = {"store_id": inp.store_id or self._store_id, "catalog": slim}
        return inp.model_copy(update=update)

    async def attach(self, conversation: str) -> ConversationHandle:
        handle, _ = await self.describe(conversation)
        return handle

    async def result(self, conversation: str | ConversationHandle) -> ConversationResult:
        """Wait for a conversation (by id or handle) to finish, and return its result."""
        handle = await self.attach(conversation) if isinstance(conversation, str) else conversation
        return await handle.result()

    async def running(self, handle: ConversationHandle) -> bool:
        return is_running(await handle.describe())

    async def list_conversations(
        self,
        limit: int,
        *,
        agent: str | None = None,
        status: str | None = None,
        rollout: str | None = None,
        children: bool = False,
    ) -> list[ConversationSummary]:
        """The newest `limit` conversations by start, newest first, with what their search
        attributes say: of `agent`, in `status` (a key of EXECUTION_STATUSES), the arms of
        `rollout`. Delegated conversations and rollout arms (children) only when asked for,
        or when a rollout's arms are."""
        query = f"WorkflowType = {query_literal(CONVERSATION_WORKFLOW)}"
        if agent is not None:
            query += f" AND {search.AGENT.name} = {query_literal(agent)}"
        if rollout is not None:
            query += f" AND {search.ROLLOUT.name} = {query_literal(rollout)}"
        elif not children:
            query += " AND ParentWorkflowId IS NULL"
        if status is not None:
            query += f" AND ExecutionStatus = {query_literal(EXECUTION_STATUSES[status])}"
        client = await self.temporal()
        # Visibility lists running runs first, then closed ones by close time, newest first.
        running = client.list_workflows(f"{query} AND ExecutionStatus = 'Running'")
        closed = client.list_workflows(f"{query} AND ExecutionStatus != 'Running'")
        found = [e async for e in running] if status in (None, "running") else []
        if status != "running":
            found = await newest_started(found, closed, limit)
        found = sorted(found, key=lambda e: (e.start_time, e.id), reverse=True)[:limit]
        return [await _summary(e) for e in found]

    async def top_scored(
        self, limit: int, agent: str | None = None, evaluator: str | None = None
    ) -> list[ConversationSummary]:
        """The best-scored conversations, best first: by their mean score (P2eScore), or by
        one evaluator's mean (their memo, from the time they close). SQL visibility cannot
        sort by a custom attribute, so the newest `SCORED_SCAN` scored ones are ranked here."""
        query = (
            f"WorkflowType = {query_literal(CONVERSATION_WORKFLOW)} AND {search.SCORE.name} >= 0"
        )
        if agent is not None:
            query += f" AND {search.AGENT.name} = {query_literal(agent)}"
        scored = await self._summaries(query, SCORED_SCAN)

        def value(c: ConversationSummary) -> float | None:
            return c.score if evaluator is None else c.scores.get(evaluator)

        ranked = [c for c in scored if value(c) is not None]
        return sorted(ranked, key=lambda c: (-(value(c) or 0.0), c.id))[:limit]

    async def _summaries(self, query: str, limit: int) -> list[ConversationSummary]:
        client = await self.temporal()
        return [await _summary(e) async for e in client.list_workflows(query, limit=limit)]

    async def branches_of(self, source: str) -> list[ConversationSummary]:
        """The branches started from `source`, oldest first (visibility: `P2eBranchOf`)."""
        query = f"{search.BRANCH_OF.name} = {query_literal(source)}"
        found = await self._summaries(query, BRANCHES_LISTED)
        return sorted(found, key=lambda c: c.started)

    async def human_turn(self, root_id: str, agent_id: str) -> ConversationHandle | None:
        """The conversation under `root_id` (itself or a delegated child) waiting for the
        human agent `agent_id` to answer."""
        async for handle, _ in self._human_waits(root_id, agent_id):
            return handle
        return None

    async def human_waits(self, root_id: str) -> list[tuple[str, str]]:
        """(conversation, human agent) for each conversation under `root_id`, itself or a
        delegated child, that waits for a person to answer as that agent."""
        return [(handle.id, agent) async for handle, agent in self._human_waits(root_id)]

    async def _human_waits(
        self, root_id: str, agent_id: str | None = None
    ) -> AsyncIterator[tuple[ConversationHandle, str]]:
        client = await self.temporal()
        root = query_literal(root_id)
        query = (
            f"ExecutionStatus = 'Running' AND "
            f"{search.STATE.name} = {query_literal(State.WAITING.value)} AND "
            f"(WorkflowId = {root} OR WorkflowId STARTS_WITH {query_literal(root_id + '/')})"
        )
        if agent_id is not None:
            query += f" AND {search.AGENT.name} = {query_literal(agent_id)}"
        async for execution in client.list_workflows(query, limit=10):
            handle = _handle(client, execution.id)
            agent = execution.typed_search_attributes.get(search.AGENT)
            if agent and (await self.status(handle)).waiting_for == "human":
                yield handle, agent

    # --- queries --------------------------------------------------------------------------

    async def stack(self, handle: ConversationHandle) -> list[StackEntry]:
        return await handle.query(ConversationWorkflow.stack)

    async def stack_of(
        self, handle: ConversationHandle, description: WorkflowExecutionDescription
    ) -> tuple[ConversationResult | None, list[StackEntry]]:
        """A conversation's result and stack once it completed (no worker needed for them),
        else no result and the stack a worker answers the query with."""
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result = await handle.result()
            return result, result.stack
        return None, await self.stack(handle)

    async def status(self, handle: ConversationHandle) -> ConversationStatus:
        return await handle.query(ConversationWorkflow.state)

    async def overrides(self, handle: ConversationHandle) -> Overrides:
        return await handle.query(ConversationWorkflow.overrides)

    # --- updates --------------------------------------------------------------------------

    async def start_send(
        self, handle: ConversationHandle, text: str
    ) -> WorkflowUpdateHandle[TurnResult]:
        """Deliver the user's next message; returns once the workflow accepted it, so the
        caller can show the stack while the agent answers."""
        check_message(text)
        return await send_update(
            lambda: handle.start_update(
                ConversationWorkflow.send_message, text, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
        )

    async def start_answer(
        self, handle: ConversationHandle, text: str
    ) -> WorkflowUpdateHandle[TurnResult]:
        """Answer for the human agent whose turn it is; returns once accepted, as
        `start_send` does."""
        check_message(text, "answer")
        return await send_update(
            lambda: handle.start_update(
                ConversationWorkflow.answer, text, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
        )

    async def end(self, handle: ConversationHandle) -> None:
        await send_update(lambda: handle.execute_update(ConversationWorkflow.end))

    async def set_behavior(self, handle: ConversationHandle, persona: str | None) -> Overrides:
        return await send_update(
            lambda: handle.execute_update(ConversationWorkflow.set_behavior, persona)
        )

    async def set_tools(self, handle: ConversationHandle, tools: list[str] | None) -> Overrides:
        return await send_update(
            lambda: handle.execute_update(ConversationWorkflow.set_tools, tools)
        )

    async def set_model(self, handle: ConversationHandle, model: str | None) -> Overrides:
        """Use `model` from the next step (None: agents.yml's again); one litellm cannot
        route is refused here, before the update is sent."""
        if model is not None:
            check_model(model)
        return await send_update(
            lambda: handle.execute_update(ConversationWorkflow.set_model, model)
        )


async def start_conversation(
    client: Client,
    settings: Settings,
    agent: AgentSpec | str,
    message: str | None,
    *,
    name: str | None = None,
    model: str | None = None,
    interactive: bool = False,
    catalog: Catalog | None = None,
    evaluators: list[str] | None = None,
) -> tuple[ConversationHandle, bool]:
    """`ConversationClient.build_input` then `start`, in one call for benchmarks and tests."""
    conversations = ConversationClient(settings, client)
    inp = conversations.build_input(
        agent,
        message,
        model=model,
        interactive=interactive,
        catalog=catalog,
        evaluators=evaluators,
    )
    return await conversations.start(inp, name=name)
