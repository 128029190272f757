"""Branches: a new conversation that starts from the state another had at the end of one of
its steps, and runs beside it. The source is never changed and nothing before the branch
point runs again: the branch starts with the source's stack, transcript head, usage,
duplicate-call memory and overrides, all taken from the source's own record.

That record comes from a query while the source runs, and from replaying its history in
this process when it is closed or no worker answers. A running source starts the branch
itself as its child (the `branch` update), so the Web UI shows it among the source's
relationships; otherwise the branch is a workflow of its own. Either way its state goes to
the artifact store and its input names it, so the input's size does not grow with the
source's length.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from p2engine.contract.errors import InvalidInput, P2eError, refuse
from p2engine.contract.models import (
    CURRENT_REVISION,
    ActiveBranch,
    BranchBase,
    BranchChild,
    BranchOrigin,
    BranchStart,
    ConversationInput,
    Overrides,
)
from p2engine.contract.names import ACTIVE_BRANCH_MEMO, ACTIVE_BRANCH_SUFFIX, BRANCH_TAKEN
from p2engine.runtime.client import send_update
from p2engine.runtime.conversations import (
    ConversationClient,
    ConversationHandle,
    ConversationSummary,
    check_changes,
    check_name,
    conversation_id,
    query_literal,
)
from p2engine.runtime.replay import replay
from p2engine.store import store_for
from p2engine.workflows import branching, search
from p2engine.workflows.active_branch import ActiveBranchWorkflow
from p2engine.workflows.conversation import ConversationWorkflow
from p2engine.workflows.details import conversation_details

QUERY_TIMEOUT_S = 5.0
MAX_BRANCH_IDS = 1000  # `<conv>~b1` ... tried in turn when no id is given


@dataclass(frozen=True)
class StartedBranch:
    id: str
    origin: BranchOrigin
    as_child: bool  # started by its running source, as its child


@dataclass(frozen=True)
class PreparedBranch:
    source: ConversationHandle
    input: ConversationInput
    origin: BranchOrigin
    live: bool  # a worker answered for the running source: it starts the branch
    name: str | None


@dataclass(frozen=True)
class BranchChanges:
    """What a branch does differently from the branch point on."""

    message: str | None = None
    model: str | None = None
    tools: list[str] | None = None
    persona: str | None = None
    interactive: bool | None = None  # None: as the source is


class Branches:
    def __init__(self, conversations: ConversationClient) -> None:
        self.conversations = conversations

    async def start(
        self, source: str, step: int, changes: BranchChanges, name: str | None = None
    ) -> StartedBranch:
        """Branch `source` at the end of `step`; refused in one line, before anything is
        stored or started, when the step was never reached or a change is unknown."""
        return await self.launch(await self.prepare(source, step, changes, name))

    async def prepare(
        self, source: str, step: int, changes: BranchChanges, name: str | None = None
    ) -> PreparedBranch:
        """Everything `launch` starts, checked and with the branch's state stored; needs no
        worker unless the source runs (a worker answers for it, or its history does)."""
        if name is not None:
            check_name(name)
        handle, running = await self._find(source)
        base, live = await self._base(handle, running)
        check_changes(
            base.input.agent,
            base.input.catalog,
            message=changes.message,
            model=changes.model,
            tools=changes.tools,
            persona=changes.persona,
        )
        refuse(branching.branch_problem(base.state, step, changes.message))

        origin = BranchOrigin(source=handle.id, step=step)
        state = branching.state_at(base.state, step, origin, changes.message)
        overridden = {
            key: value
            for key, value in (
                ("model", changes.model),
                ("tools", changes.tools),
                ("persona", changes.persona),
            )
            if value is not None
        }
        state.overrides = Overrides.model_validate({**state.overrides.model_dump(), **overridden})
        settings = self.conversations.settings
        async with store_for(settings) as store:
            state_ref = await store.put_text(state.model_dump_json())
        interactive = base.input.interactive if changes.interactive is None else changes.interactive
        inp = base.input.model_copy(
            update={
                "interactive": interactive,
                "message": changes.message,
                "resume": None,
                "branch": BranchStart(origin=origin, state_ref=state_ref),
                "revision": CURRENT_REVISION,
                # A learning run's arm waits at barriers for the run; its branch is a
                # conversation of its own, released by no one.
                "propagation": None,
            }
        )
        return PreparedBranch(handle, inp, origin, live, name)

    async def launch(self, prepared: PreparedBranch) -> StartedBranch:
        """Start the branch: the next free `<source>~b<n>`, or its name."""
        handle, inp, name = prepared.source, prepared.input, prepared.name
        for workflow_id in self._ids(handle.id, name):
            try:
                if prepared.live:
                    await self._start_as_child(handle, workflow_id, inp)
                else:
                    await self._start_alone(workflow_id, inp)
                return StartedBranch(workflow_id, prepared.origin, as_child=prepared.live)
            except _Taken:
                if name is not None:
                    raise InvalidInput(f"{workflow_id} already exists") from None
        raise P2eError(f"{handle.id} has {MAX_BRANCH_IDS} branches; name the next with --id")

    async def _find(self, source: str) -> tuple[ConversationHandle, bool]:
        handle, description = await self.conversations.describe(source)
        return handle, description.status == WorkflowExecutionStatus.RUNNING

    async def _base(self, handle: ConversationHandle, running: bool) -> tuple[BranchBase, bool]:
        """The source's input and state, and whether a worker answered for it (live)."""
        if running:
            try:
                query = handle.query(ConversationWorkflow.branch_base)
                return await asyncio.wait_for(query, timeout=QUERY_TIMEOUT_S), True
            except (TimeoutError, RPCError):
                pass  # no worker serves it: its history says the same
        history = await handle.fetch_history()
        replayed = await replay(history)
        instance = replayed.instance
        if not isinstance(instance, ConversationWorkflow):
            raise InvalidInput(f"{handle.id} is not a conversation")
        if replayed.failure is not None:
            raise P2eError(
                f"{handle.id} does not replay with this code ({replayed.failure}); "
                "`p2e replay` says where"
            )
        return BranchBase(
            input=instance.inp.model_copy(update={"resume": None}), state=instance.s
        ), False

    def _ids(self, source: str, name: str | None) -> list[str]:
        if name is not None:
            return [conversation_id(name)]
        return [f"{source}~b{n}" for n in range(1, MAX_BRANCH_IDS + 1)]

    async def _start_as_child(
        self, handle: ConversationHandle, workflow_id: str, inp: ConversationInput
    ) -> None:
        try:
            child = BranchChild(workflow_id=workflow_id, input=inp)
            await send_update(lambda: handle.execute_update(ConversationWorkflow.branch, child))
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == BRANCH_TAKEN:
                raise _Taken from None
            raise

    async def _start_alone(self, workflow_id: str, inp: ConversationInput) -> None:
        assert inp.branch is not None
        origin = inp.branch.origin
        client = await self.conversations.temporal()
        try:
            await client.start_workflow(
                ConversationWorkflow.run,
                inp,
                id=workflow_id,
                task_queue=self.conversations.settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=branching.branch_search_attributes(inp.agent.id, origin),
                memo=branching.branch_memo(origin),
                static_summary=branching.branch_summary(origin, inp.message),
                static_details=conversation_details(inp),
            )
        except WorkflowAlreadyStartedError:
            raise _Taken from None

    def branches_query(self, source: str) -> str:
        """The visibility query that finds the branches of `source` (the Web UI's filter)."""
        return f"{search.BRANCH_OF.name} = {query_literal(source)}"

    async def tree(self, source: str) -> list[tuple[int, ConversationSummary]]:
        """Every branch of `source`, of its branches and so on, depth-first, each with its
        depth (1 for a branch of `source` itself)."""
        handle, _ = await self.conversations.describe(source)  # unknown: ConversationNotFound
        found: list[tuple[int, ConversationSummary]] = []

        async def walk(parent: str, depth: int) -> None:
            for branch in await self.conversations.branches_of(parent):
                found.append((depth, branch))
                await walk(branch.id, depth + 1)

        await walk(handle.id, 1)
        return found


class ActiveBranches:
    """Which branch `p2e chat -c <conversation>` continues: `rewind` and `checkout` set it,
    in the conversation's ActiveBranchWorkflow (one per rewound conversation)."""

    def __init__(self, branches: Branches) -> None:
        self.branches = branches
        self.conversations = branches.conversations

    async def prepare_rewind(
        self, conversation: str, step: int, changes: BranchChanges
    ) -> PreparedBranch:
        """A branch of `conversation` at `step` that goes on as an interactive one."""
        interactive = replace(changes, interactive=True)
        return await self.branches.prepare(conversation, step, interactive)

    async def rewind(self, prepared: PreparedBranch) -> StartedBranch:
        """Start the branch and make it the active one."""
        started = await self.branches.launch(prepared)
        await self._set(prepared.source.id, started.id)
        return started

    async def checkout(self, conversation: str, branch: str) -> str:
        """Make `branch` (the conversation itself, or a branch in its tree) the active one."""
        root, _ = await self.conversations.describe(conversation)
        chosen, _ = await self.conversations.describe(branch)
        if chosen.id != root.id:
            tree = {summary.id for _, summary in await self.branches.tree(root.id)}
            if chosen.id not in tree:
                raise InvalidInput(f"{chosen.id} is not a branch of {root.id}")
        await self._set(root.id, chosen.id)
        return chosen.id

    async def active(self, conversation: str) -> str:
        """The branch `conversation` continues in: its active branch's active branch, and
        so on, or the conversation itself when it was never rewound."""
        handle, _ = await self.conversations.describe(conversation)
        current, seen = handle.id, {handle.id}
        client = await self.conversations.temporal()
        while True:
            try:
                record = await client.get_workflow_handle(active_id(current)).describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return current
                raise
            chosen = await record.memo_value(ACTIVE_BRANCH_MEMO, current, type_hint=str)
            if chosen in seen:
                return chosen
            current = chosen
            seen.add(current)

    async def _set(self, root: str, branch: str) -> None:
        client = await self.conversations.temporal()
        start = WithStartWorkflowOperation(
            ActiveBranchWorkflow.run,
            ActiveBranch(root=root, active=root),
            id=active_id(root),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self.conversations.settings.temporal.task_queue,
            static_summary=f"the active branch of {root}",
        )
        await client.execute_update_with_start_workflow(
            ActiveBranchWorkflow.checkout, branch, start_workflow_operation=start
        )


def active_id(conversation: str) -> str:
    return f"{conversation}{ACTIVE_BRANCH_SUFFIX}"


class _Taken(Exception):
    """The branch id is in use: try the next."""
