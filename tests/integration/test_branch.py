"""Branches: a conversation started from the state another had at the end of one of its
steps, beside it, repeating nothing before the branch point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

import p2engine.workflows.branching as branching
from p2engine.contract.errors import ConversationNotFound, InvalidInput
from p2engine.contract.models import ConversationState, StackEntry
from p2engine.contract.states import FinishReason, State
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.runtime.branches import ActiveBranches, BranchChanges, Branches
from p2engine.runtime.conversations import ConversationClient, start_conversation
from p2engine.runtime.settings import ConversationSettings, Settings
from p2engine.runtime.worker import build_worker
from p2engine.store import open_store
from p2engine.workflows.conversation import ConversationWorkflow
from tests.conftest import queue_settings
from tests.golden.record import CASES
from tests.integration.helpers import (
    agent,
    eventually,
    kinds,
    start_input,
    unique,
    wait_until_waiting,
    workflow_exists,
)

pytestmark = pytest.mark.usefixtures("worker")

# The state fields a branch takes from its source as they were; the rest are its own (its
# lineage, the checkpoints it goes on to record, what the source had yet to store) or sum
# the scores on its stack, which may have come in after the step (rewards, judges' usage).
COMPARED = {"state", "waiting_for", "step", "usage", "head", "calls", "reason", "stack"} | {
    "seen_calls", "penalties", "overrides", "inbox"
}  # fmt: skip


@pytest.fixture()
async def observed(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Settings, dict[tuple[str, int], ConversationState]]]:
    """Settings for a queue of its own, whose worker runs the workflow unsandboxed so that
    the live state of every conversation at the end of each step can be copied, as the
    workflow records its checkpoint."""
    from temporalio import workflow

    seen: dict[tuple[str, int], ConversationState] = {}
    record = branching.checkpoint

    def capture(s: ConversationState) -> Any:
        seen[(workflow.info().workflow_id, s.step)] = s.model_copy(deep=True)
        return record(s)

    monkeypatch.setattr(branching, "checkpoint", capture)
    own = queue_settings(settings)
    async with build_worker(client, own, runner=UnsandboxedWorkflowRunner()):
        yield own, seen


async def finished(client: Client, settings: Settings, message: str, **changes: Any) -> str:
    handle, _ = await start_conversation(
        client, settings, agent(settings, **changes), message, name=unique("source")
    )
    result = await handle.result()
    assert result.reason is FinishReason.DONE
    return result.conversation_id


async def start_state(conversations: ConversationClient, branch_id: str) -> ConversationState:
    """The state a branch started with: what its input names in the artifact store."""
    inp = await start_input(await conversations.attach(branch_id))
    assert inp.branch is not None
    text = await open_store(conversations.settings).get_text(inp.branch.state_ref)
    return ConversationState.model_validate_json(text)


def same(state: ConversationState, captured: ConversationState) -> None:
    """Equal but for the scores that came in after the step, for the entries up to it: the
    branch has them, the live state did not yet."""

    def without_scores(s: ConversationState) -> dict[str, Any]:
        data = s.model_dump(include=COMPARED)
        data["stack"] = [{**e, "evaluations": None} for e in data["stack"]]
        return data

    assert without_scores(state) == without_scores(captured)
    for mine, theirs in zip(state.stack, captured.stack, strict=True):
        assert mine.evaluations[: len(theirs.evaluations)] == theirs.evaluations


async def settled(conversations: ConversationClient, branch_id: str) -> list[StackEntry]:
    """The branch's stack once it has finished, or waits for its user (then ended)."""
    handle = await conversations.attach(branch_id)

    async def still_running() -> bool:
        return (await conversations.status(handle)).state not in (State.FINISHED, State.WAITING)

    while await still_running():
        await asyncio.sleep(0.1)
    if (await conversations.status(handle)).state is State.WAITING:
        await conversations.end(handle)
    return (await handle.result()).stack


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_branch_of_a_finished_conversation_starts_with_the_state_it_had_at_that_step(
    client: Client, observed: tuple[Settings, dict[tuple[str, int], ConversationState]], name: str
) -> None:
    settings, states_at_each_step = observed
    case = CASES[name]
    if case.rewards is not None:
        ledger = EmbeddedLedger(settings.state_dir / "ledger.db", settings.ledger.max_transfer)
        for wallet in (case.agent_id, settings.ledger.treasury):
            await ledger.open_wallet(wallet, Decimal("100"))
        await ledger.close()
    run_settings = settings.model_copy(
        update={
            "conversation": ConversationSettings(
                continue_as_new_events=case.continue_as_new_events
            ),
            "rewards": case.rewards,
        }
    )
    conversations = ConversationClient(run_settings, client)
    spec = agent(settings, case.agent_id, **case.changes)
    inp = conversations.build_input(
        spec, case.message, interactive=case.interactive, evaluators=case.evaluators
    ).model_copy(update={"propagation": case.propagation})
    handle, _ = await conversations.start(inp, name=unique(name.replace("_", "-")))
    if case.drive is not None:  # what a person does while it runs
        await case.drive(handle, conversations)
    source_result = await handle.result()
    source = source_result.conversation_id
    steps = sorted(step for (wf, step) in states_at_each_step if wf == source)
    branches = Branches(conversations)
    if not steps:  # the first step failed: there is no step to branch from
        with pytest.raises(InvalidInput, match="step 1 was never reached"):
            await branches.start(source, 1, BranchChanges())
        return
    at = steps[len(steps) // 2]

    started = await branches.start(source, at, BranchChanges())

    assert started.id.startswith(f"{source}~b") and not started.as_child
    same(await start_state(conversations, started.id), states_at_each_step[(source, at)])
    stack = await settled(conversations, started.id)
    prefix = len(states_at_each_step[(source, at)].stack)

    def entries(es: list[StackEntry]) -> list[dict[str, Any]]:
        return [e.model_dump(exclude={"evaluations"}) for e in es[:prefix]]

    assert entries(stack) == entries(source_result.stack)


async def test_a_branch_after_a_payment_pays_nothing_again(
    client: Client, settings: Settings
) -> None:
    ledger = EmbeddedLedger(settings.state_dir / "ledger.db", settings.ledger.max_transfer)
    for wallet in ("agent_alpha", "agent_beta"):
        await ledger.open_wallet(wallet, Decimal("100"))
    source = await finished(client, settings, "Transfer 5 to agent_beta for helping")
    before = {w.agent: w.balance for w in await ledger.overview()}
    conversations = ConversationClient(settings, client)

    started = await Branches(conversations).start(source, 2, BranchChanges())
    result = await (await conversations.attach(started.id)).result()

    assert result.reason is FinishReason.DONE
    assert kinds(result.stack)[-2:] == [State.ASSISTANT_MESSAGE, State.FINISHED]
    assert {w.agent: w.balance for w in await ledger.overview()} == before
    references = [r.reference for r in await ledger.history("agent_alpha", 100)]
    assert started.id not in references and source in references
    await ledger.close()


async def test_a_branch_after_a_delegation_starts_no_child(
    client: Client, settings: Settings
) -> None:
    source = await finished(client, settings, "delegate to agent_beta: the weather in Paris")
    conversations = ConversationClient(settings, client)

    started = await Branches(conversations).start(source, 2, BranchChanges())
    result = await (await conversations.attach(started.id)).result()

    assert result.reason is FinishReason.DONE
    [child] = [e for e in result.stack if e.kind is State.AGENT_RESULT]
    assert child.child_id is not None and child.child_id.startswith(f"{source}/")
    assert not await workflow_exists(client, f"{started.id}/d1-agent_beta")


async def test_a_running_conversation_starts_its_branch_as_its_child(
    client: Client, settings: Settings
) -> None:
    conversations = ConversationClient(settings, client)
    handle, _ = await conversations.start(
        conversations.build_input(agent(settings), None, interactive=True), name=unique("live")
    )
    await wait_until_waiting(handle, "user")
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    branches = Branches(conversations)

    started = await branches.start(handle.id, 3, BranchChanges(message="and in Oslo?"))

    assert started.as_child
    branch = await conversations.attach(started.id)
    description = await branch.describe()
    assert description.parent_id == handle.id
    await wait_until_waiting(branch, "user")
    stack = await conversations.stack(branch)
    assert [e.preview for e in stack if e.kind is State.USER_MESSAGE][-1] == "and in Oslo?"

    async def listed() -> bool:
        found = [w.id async for w in client.list_workflows(branches.branches_query(handle.id))]
        return found == [started.id]

    await eventually(listed)
    # A second branch of the same step gets the next id; the source is unchanged.
    second = await branches.start(handle.id, 3, BranchChanges())
    assert second.id == f"{handle.id}~b2"
    assert len(await conversations.stack(handle)) < len(stack)
    await asyncio.gather(conversations.end(handle), conversations.end(branch))


async def test_a_branch_that_cannot_start_is_refused_and_starts_nothing(
    client: Client, settings: Settings
) -> None:
    source = await finished(client, settings, "What's the weather in Paris?")
    conversations = ConversationClient(settings, client)
    branches = Branches(conversations)
    refusals = [
        (0, BranchChanges(), "step must be 1 or more"),
        (9, BranchChanges(), "step 9 was never reached (steps 1 to 3)"),
        (1, BranchChanges(message="hi"), "step 1 ends with calls still to run (ToolCall)"),
        (2, BranchChanges(message="hi"), "step 2 ends with results the model has yet to read"),
        (2, BranchChanges(model=" "), "the model name is empty"),
        (2, BranchChanges(tools=["nope"]), "unknown tool 'nope'"),
        (2, BranchChanges(persona="nope"), "unknown persona 'nope'"),
    ]
    for step, changes, problem in refusals:
        with pytest.raises(InvalidInput, match=problem.replace("(", r"\(").replace(")", r"\)")):
            await branches.start(source, step, changes)
    with pytest.raises(ConversationNotFound):
        await branches.start("conv-nope", 1, BranchChanges())
    assert not await workflow_exists(client, f"{source}~b1")


async def test_two_rewinds_at_once_leave_one_active_branch_and_both_listed(
    client: Client, settings: Settings
) -> None:
    source = await finished(client, settings, "What's the weather in Paris?")
    conversations = ConversationClient(settings, client)
    active = ActiveBranches(Branches(conversations))
    assert await active.active(source) == source  # never rewound

    prepared = [
        await active.prepare_rewind(source, 3, BranchChanges(message=text))
        for text in ("and Rome?", "and Oslo?")
    ]
    started = await asyncio.gather(*(active.rewind(p) for p in prepared))

    ids = sorted(s.id for s in started)
    assert ids == [f"{source}~b1", f"{source}~b2"]
    assert await active.active(source) in ids
    for branch in ids:  # rewound branches go on as interactive conversations
        await wait_until_waiting(await conversations.attach(branch), "user")

    async def both_listed() -> bool:
        return sorted(s.id for _, s in await Branches(conversations).tree(source)) == ids

    await eventually(both_listed)
    assert await active.checkout(source, ids[0]) == ids[0]
    assert await active.active(source) == ids[0]
    assert await active.checkout(source, source) == source  # back to the conversation itself
    assert await active.active(source) == source
    with pytest.raises(InvalidInput, match="is not a branch of"):
        await active.checkout(source, await finished(client, settings, "hello"))
    # A rewind of the active branch is followed: the conversation continues in the newest.
    await active.checkout(source, ids[1])
    deeper = await active.rewind(await active.prepare_rewind(ids[1], 3, BranchChanges()))
    assert await active.active(source) == deeper.id
    for branch in [*ids, deeper.id]:
        await conversations.end(await conversations.attach(branch))
