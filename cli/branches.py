"""`p2e conversation branch` and `branches`: start a conversation from another's step, and
show the tree of a conversation's branches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    note,
    print_json,
    run_async,
    serving,
    settings_for,
    ui_url,
)
from p2engine.cli.tables import Col, print_table
from p2engine.contract.names import status_name

if TYPE_CHECKING:
    from p2engine.runtime.branches import BranchChanges, StartedBranch
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.settings import Settings

SETTLED_POLL_S = 0.2


def branch(
    conversation: Annotated[str, typer.Argument(help="The source: conv-NAME or NAME.")],
    at: Annotated[int, typer.Option("--at", help="Branch after this step (1 or more).")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="The branch's next user message.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Another model from the branch on.")] = None,
    tools: Annotated[
        str | None, typer.Option(help="Other tools from the branch on: a,b ('' for none).")
    ] = None,
    persona: Annotated[str | None, typer.Option(help="Another persona ('none').")] = None,
    name: Annotated[
        str | None, typer.Option("--id", help="The branch's name (default <conv>~b<n>).")
    ] = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Start a new conversation from the end of step --at of CONVERSATION.

    It starts with the source's stack, transcript, usage, duplicate-call memory and
    overrides as they were then; nothing before runs again. The source is never changed; a
    running source starts the branch as its child."""
    from p2engine.runtime.branches import BranchChanges

    settings = settings_for(address, namespace)
    listed = None if tools is None else [t.strip() for t in tools.split(",") if t.strip()]
    changes = BranchChanges(message=message, model=model, tools=listed, persona=persona)
    started = run_async(_branch(settings, conversation, at, changes, name))
    if as_json:
        print_json(
            {
                "id": started.id,
                "source": started.origin.source,
                "step": started.origin.step,
                "as_child": started.as_child,
            }
        )
        return
    how = "as its child" if started.as_child else "on its own"
    console.print(
        f"{started.id}: a branch of {started.origin.source} at step {started.origin.step}, "
        f"started {how}",
        highlight=False,
    )
    if link := ui_url(settings, started.id):
        console.print(f"web ui: {link}", highlight=False)


async def _branch(
    settings: Settings, source: str, step: int, changes: BranchChanges, name: str | None
) -> StartedBranch:
    from p2engine.runtime.branches import Branches
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.worker import standing_worker_present

    conversations = ConversationClient(settings)
    branches = Branches(conversations)
    prepared = await branches.prepare(source, step, changes, name)
    client = await conversations.temporal()
    standing = await standing_worker_present(client, settings)
    async with serving(client, settings):
        started = await branches.launch(prepared)
        if not standing:
            note("running the branch here until it finishes or waits for its user")
            await _settled(conversations, started.id)
    return started


def rewind(
    conversation: Annotated[str, typer.Argument(help="conv-NAME or NAME.")],
    step: Annotated[int, typer.Argument(help="Go back to the end of this step (1 or more).")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="The next user message there.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Another model from there on.")] = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Go back to the end of STEP, in a new branch that `p2e chat -c` continues.

    The branch is interactive and becomes CONVERSATION's active branch. The conversation
    itself stays as it was, listed among `branches` with the new one."""
    from p2engine.runtime.branches import BranchChanges

    settings = settings_for(address, namespace)
    changes = BranchChanges(message=message, model=model)
    started = run_async(_rewind(settings, conversation, step, changes))
    if as_json:
        print_json({"id": started.id, "source": started.origin.source, "step": step})
        return
    console.print(
        f"{started.origin.source} rewound to step {step}: {started.id} is its active branch; "
        f"`p2e chat -c {started.origin.source}` continues it",
        highlight=False,
    )


async def _rewind(
    settings: Settings, conversation: str, step: int, changes: BranchChanges
) -> StartedBranch:
    from p2engine.runtime.branches import ActiveBranches, Branches
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.worker import standing_worker_present

    conversations = ConversationClient(settings)
    active = ActiveBranches(Branches(conversations))
    prepared = await active.prepare_rewind(conversation, step, changes)
    client = await conversations.temporal()
    standing = await standing_worker_present(client, settings)
    async with serving(client, settings):
        started = await active.rewind(prepared)
        if not standing:
            await _settled(conversations, started.id)
    return started


def checkout(
    conversation: Annotated[str, typer.Argument(help="conv-NAME or NAME.")],
    branch: Annotated[str, typer.Argument(help="One of its branches, or itself.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Make BRANCH the one `p2e chat -c CONVERSATION` continues.

    Naming the conversation itself undoes a rewind."""
    settings = settings_for(address, namespace)
    chosen = run_async(_checkout(settings, conversation, branch))
    console.print(f"{chosen} is the active branch of {conversation}", highlight=False)


async def _checkout(settings: Settings, conversation: str, branch: str) -> str:
    from p2engine.runtime.branches import ActiveBranches, Branches
    from p2engine.runtime.conversations import ConversationClient

    conversations = ConversationClient(settings)
    async with serving(await conversations.temporal(), settings):
        return await ActiveBranches(Branches(conversations)).checkout(conversation, branch)


async def _settled(conversations: ConversationClient, branch_id: str) -> None:
    """Until the branch has finished or waits for a person."""
    import asyncio

    from p2engine.contract.states import State

    handle = await conversations.attach(branch_id)
    while (await conversations.status(handle)).state not in (State.FINISHED, State.WAITING):
        await asyncio.sleep(SETTLED_POLL_S)


def branches(
    conversation: Annotated[str, typer.Argument(help="conv-NAME or NAME.")],
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show the tree of CONVERSATION's branches, and theirs.

    Each with the step it starts after, how far it has got, its state and its score. The
    Web UI finds them with P2eBranchOf = '<conv>'."""
    settings = settings_for(address, namespace)
    rows = run_async(_tree(settings, conversation))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"{conversation} has no branches", highlight=False)
        return
    columns = [Col("branch"), Col("at step", "number"), Col("steps", "number"), Col("state"),
               Col("score", "number")]  # fmt: skip
    table = [
        [
            "  " * (row["depth"] - 1) + ("▸ " if row["active"] else "  ") + row["id"],
            str(row["step"]),
            "-" if row["steps"] is None else str(row["steps"]),
            row["state"] or row["status"],
            "-" if row["score"] is None else f"{row['score']:.2f}",
        ]
        for row in rows
    ]
    print_table(console, f"Branches of {rows[0]['source']}", columns, table)
    active = next((row["id"] for row in rows if row["active"]), rows[0]["source"])
    console.print(f"▸ active: {active} (`p2e chat -c` continues it)", style="dim", highlight=False)


async def _tree(settings: Settings, conversation: str) -> list[dict[str, Any]]:
    from p2engine.runtime.branches import ActiveBranches, Branches
    from p2engine.runtime.conversations import ConversationClient

    branches = Branches(ConversationClient(settings))
    found = await branches.tree(conversation)
    active = await ActiveBranches(branches).active(conversation)
    if not found:
        note("visibility lists a new branch a moment after it starts")
    return [
        {
            "id": summary.id,
            "depth": depth,
            "source": summary.branch_of.source if summary.branch_of else None,
            "step": summary.branch_of.step if summary.branch_of else None,
            "steps": summary.step,
            "state": summary.state,
            "status": status_name(summary.status),
            "score": summary.score,
            "active": summary.id == active,
        }
        for depth, summary in found
    ]
