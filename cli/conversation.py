"""`p2e conversation`: list conversations and show one's interaction stack."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    RerunOption,
    RerunSaveOption,
    RerunServeOption,
    console,
    note,
    print_json,
    run_async,
    settings_for,
)
from p2engine.cli.display import stack_table
from p2engine.cli.tables import Col, moment, print_table
from p2engine.contract.errors import P2eError
from p2engine.contract.names import EXECUTION_STATUSES, status_name

if TYPE_CHECKING:
    from p2engine.contract.models import BranchOrigin, StackEntry
    from p2engine.runtime.rerun_view import ConversationRecorder, RerunTarget, Sinks
    from p2engine.runtime.settings import Settings

app = typer.Typer(help="Conversations and their interaction stacks.", no_args_is_help=True)

QUERY_TIMEOUT_S = 5.0


Status = StrEnum("Status", {name: name for name in EXECUTION_STATUSES})  # type: ignore[misc]


@app.command("list")
def list_conversations(
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Newest N conversations.", min=1)
    ] = 50,
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent's.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only those in this state.")] = None,
    rollout: Annotated[
        str | None, typer.Option(help="Only the arms of this rollout (rollout-NAME or NAME).")
    ] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Delegated conversations and rollout arms too."),
    ] = False,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List conversations, newest first: those started by a user, unless --all or --rollout."""
    settings = settings_for(address, namespace)
    found = Filter(agent, status.value if status else None, rollout, every)
    rows = run_async(_list(settings, limit, found))
    if as_json:
        print_json(rows)
        return
    columns = [
        Col("id"),
        Col("agent", drop=1),
        Col("status"),
        Col("state", drop=2),
        Col("step", "number"),
        Col("started", drop=3),
    ]
    print_table(
        console,
        f"Conversations ({len(rows)})",
        columns,
        [
            [
                row["id"],
                row["agent"] or "-",
                row["status"],
                row["state"] or "-",
                str(row["step"] if row["step"] is not None else "-"),
                moment(row["started"]),
            ]
            for row in rows
        ],
    )


@dataclass(frozen=True)
class Filter:
    agent: str | None
    status: str | None
    rollout: str | None
    children: bool


async def _list(settings: Settings, limit: int, only: Filter) -> list[dict[str, Any]]:
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.rollouts import rollout_id

    listed = await ConversationClient(settings).list_conversations(
        limit,
        agent=only.agent,
        status=only.status,
        rollout=rollout_id(only.rollout) if only.rollout else None,
        children=only.children,
    )
    return [
        {
            "id": found.id,
            "agent": found.agent,
            "status": status_name(found.status),
            "state": found.state,
            "step": found.step,
            "started": found.started.isoformat(),
            "closed": found.closed.isoformat() if found.closed else None,
        }
        for found in listed
    ]


@app.command()
def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id (conv-NAME) or NAME.")],
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show a conversation's interaction stack, one row per FSM state."""
    settings = settings_for(address, namespace)
    data = run_async(_show(settings, conversation))
    if as_json:
        print_json(data)
        return
    usage = data["usage"]
    from p2engine.contract.models import StackEntry

    reason = f" ({data['reason']})" if data["reason"] else ""
    title = f"{data['conversation_id']} · {data['agent']} · {data['status']}{reason}"
    if origin := data["branch_of"]:
        title += f" · branch of {origin['source']} after step {origin['step']}"
    stack = [StackEntry.model_validate(entry) for entry in data["stack"]]
    console.print(stack_table(title, stack))
    console.print(
        f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens, "
        f"${usage['cost_usd']:.4f}",
        highlight=False,
    )


@app.command()
def watch(
    conversation: Annotated[str, typer.Argument(help="Conversation id (conv-NAME) or NAME.")],
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between looks at the conversation.")
    ] = 0.5,
    rerun: RerunOption = False,
    rerun_save: RerunSaveOption = None,
    rerun_serve: RerunServeOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show a conversation's stack live, until it ends.

    A closed one is shown once. Needs a worker serving it, as `show` does. Any --rerun
    option logs its stack and its children's, the agents and delegations, and its metrics
    per step to Rerun."""
    from p2engine.runtime.rerun_view import rerun_target

    target = rerun_target(rerun, rerun_save, rerun_serve)
    settings = settings_for(address, namespace)
    run_async(_watch(settings, conversation, interval, target))


async def _watch(
    settings: Settings, conversation: str, interval: float, rerun: RerunTarget | None = None
) -> None:
    """A running conversation no worker answers for yet (one about to start, as `p2e chat`
    starts its own) is waited for, not given up on: the watch ends when it does."""
    import asyncio

    from rich.live import Live

    found: FoundStack | None = None
    recorder: ConversationRecorder | None = None
    sinks = None
    if rerun is not None:
        from p2engine.runtime.rerun_view import open_sinks

        sinks = open_sinks(rerun)
    with Live(console=console, auto_refresh=False) as live:
        while found is None or found.status == "running":
            if found is not None:
                await asyncio.sleep(interval)
            try:
                found = await stack_of(settings, found.conversation_id if found else conversation)
                last = found.stack[-1].kind if found.stack else None
                state = (
                    f"{found.status}, {last}"
                    if found.status == "running" and last
                    else found.status
                )
            except NoWorkerAnswered as waiting:
                if not waiting.running:
                    raise
                if found is None:
                    found = FoundStack(waiting.conversation_id, "running", None, {}, [])
                state = "running, waiting for a worker"
            live.update(
                stack_table(f"{found.conversation_id} · {state}", found.stack), refresh=True
            )
            if sinks is not None:
                recorder = recorder or _recorder(sinks, settings, found.conversation_id)
                await recorder.update(found.stack, closed=found.status != "running")
    if recorder is not None:
        await recorder.recording.end(note)


def _recorder(sinks: Sinks, settings: Settings, conversation_id: str) -> ConversationRecorder:
    from p2engine.cli.display import describe_entry
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.rerun_view import ConversationRecorder

    recorder = ConversationRecorder(
        sinks, ConversationClient(settings), conversation_id, describe_entry
    )
    for place in recorder.recording.places():
        note(f"rerun: {place}")
    return recorder


class NoWorkerAnswered(P2eError):
    def __init__(self, conversation_id: str, state: str) -> None:
        super().__init__(
            f"{conversation_id} is {state} and no worker answered its query; start `p2e worker`"
        )
        self.conversation_id = conversation_id
        self.running = state == "running"


@dataclass(frozen=True)
class FoundStack:
    conversation_id: str
    status: str
    reason: str | None
    usage: dict[str, Any]
    stack: list[StackEntry]
    branch_of: BranchOrigin | None = None
    config: str | None = None


async def stack_of(settings: Settings, conversation: str) -> FoundStack:
    """A conversation's stack: from its result when it completed, else from a query."""
    import asyncio

    from temporalio.service import RPCError

    from p2engine.runtime.conversations import (
        ConversationClient,
        branch_origin,
        config_memo,
        is_running,
    )

    conversations = ConversationClient(settings)
    handle, description = await conversations.describe(conversation)
    status = status_name(description.status)
    origin, config = await branch_origin(description), await config_memo(description)
    try:
        result, stack = await asyncio.wait_for(
            conversations.stack_of(handle, description), timeout=QUERY_TIMEOUT_S
        )
    except (TimeoutError, RPCError) as exc:
        state = "running" if is_running(description) else "closed"
        raise NoWorkerAnswered(handle.id, state) from exc
    if result is not None:
        usage = result.usage.model_dump()
        return FoundStack(handle.id, status, result.reason, usage, stack, origin, config)
    return FoundStack(handle.id, status, None, _usage_of(stack), stack, origin, config)


async def _show(settings: Settings, conversation: str) -> dict[str, Any]:
    found = await stack_of(settings, conversation)
    return {
        "conversation_id": found.conversation_id,
        "agent": found.stack[0].agent_id if found.stack else None,
        "status": found.status,
        "reason": found.reason,
        "branch_of": found.branch_of.model_dump() if found.branch_of else None,
        "config": found.config,
        "usage": found.usage,
        "stack": [entry.model_dump(mode="json") for entry in found.stack],
    }


def _usage_of(stack: list[StackEntry]) -> dict[str, Any]:
    from p2engine.contract.usage import Usage

    total = Usage()
    for entry in stack:
        if entry.usage:
            total += entry.usage
    return total.model_dump()
