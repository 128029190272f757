"""`p2e chat`: talk to an agent in an interactive conversation, or answer as a human agent.

Each message is a `send_message` Workflow Update: it returns when the agent has replied, and
tool calls and delegations print while they happen. Lines come from a terminal or a pipe.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import (
    AddressOption,
    NamespaceOption,
    console,
    note,
    run_async,
    serving,
    settings_for,
)
from cli.display import Progress, reply_text, stack_table
from contract.errors import InvalidInput, P2eError

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from contract.models import ConversationStatus, TurnResult
    from runtime.settings import Settings

HELP = "/stack shows the conversation, /end closes it, /exit leaves it open for later"
POLL_S = 0.5
PROGRESS_S = 0.25
PROGRESS_KINDS = {"ToolCall", "ToolResult", "AgentCall", "AgentResult", "Finished"}


def chat(
    target: Annotated[
        str,
        typer.Argument(
            help="Agent to chat with; with --as, the conversation to answer in.",
            show_default=False,
        ),
    ],
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            "-c",
            help="Re-attach to this conversation (conv-NAME or NAME), or start it by that name.",
        ),
    ] = None,
    as_agent: Annotated[
        str | None,
        typer.Option("--as", help="Answer for this human agent in the conversation TARGET."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="litellm model string for this chat.")
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Chat with an agent: one line per message, from a terminal or a pipe.

    `p2e chat agent_alpha` starts an interactive conversation; `p2e chat --as reviewer
    conv-x` answers for the human agent `reviewer` whenever its turn comes in conv-x or in a
    conversation delegated from it.
    """
    settings = settings_for(address, namespace)
    if as_agent is not None:
        if conversation is not None:
            raise P2eError("with --as, name the conversation as the argument, not --conversation")
        raise typer.Exit(run_async(_answer_as(settings, as_agent, target)))
    raise typer.Exit(run_async(_chat(settings, target, conversation, model)))


async def _read_line(prompt: str) -> str | None:
    """The next line, or None at end of input; prompts only on a terminal."""

    def read() -> str | None:
        try:
            if sys.stdin.isatty():
                try:
                    return input(prompt)
                except EOFError:
                    return None
            line = sys.stdin.readline()
        except UnicodeDecodeError:
            raise InvalidInput("the input line is not valid UTF-8 text") from None
        return line.rstrip("\n") if line else None

    return await asyncio.to_thread(read)


async def _chat(settings: Settings, agent_id: str, name: str | None, model: str | None) -> int:
    from agents.registry import AgentRegistry
    from runtime.client import connect
    from runtime.conversations import start_conversation

    spec = AgentRegistry.load(settings.agents_file).get(agent_id)
    client = await connect(settings)
    handle, started = await start_conversation(
        client, settings, spec, None, name=name, model=model, interactive=True
    )
    async with serving(client, settings):
        status = await _status(handle)
        if status.agent_id != spec.id:
            raise P2eError(f"{handle.id} is a conversation with {status.agent_id}, not {spec.id}")
        if status.reason is not None:
            raise P2eError(f"{handle.id} has finished ({status.reason}); start a new chat")
        note(f"{'started' if started else 'attached to'} {handle.id} · {HELP}")
        while True:
            line = await _read_line("you> ")
            if line is None or line.strip() == "/exit":
                note(f"{handle.id} stays open; re-attach with: p2e chat {spec.id} -c {handle.id}")
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/stack":
                await _print_stack(handle)
            elif text == "/end":
                await handle.execute_update("end")
                note(f"{handle.id} ended")
                return 0
            elif text.startswith("/"):
                note(f"unknown command {text}; {HELP}")
            else:
                turn = await _send(handle, "send_message", text)
                if turn is None:
                    continue
                shown = reply_text(settings, turn.reply_ref, turn.reply_preview)
                console.print(f"{spec.id}> {shown}", highlight=False)
                if turn.reason is not None:
                    note(f"{handle.id} finished: {turn.reason}")
                    return 0


async def _send(handle: WorkflowHandle[Any, Any], update: str, text: str) -> TurnResult | None:
    """Deliver a message or answer; tool calls and delegations print while they happen."""
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

    from contract.models import StackEntry, TurnResult
    from runtime.conversations import check_message

    check_message(text, "answer" if update == "answer" else "message")
    before = len(await handle.query("stack", result_type=list[StackEntry]))
    try:
        pending = await handle.start_update(
            update, text, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=TurnResult
        )
    except WorkflowUpdateFailedError as exc:
        note(f"refused: {getattr(exc.cause, 'message', exc.cause)}")
        return None
    result = asyncio.ensure_future(pending.result())
    progress = Progress(printed=before, kinds=PROGRESS_KINDS)
    while not result.done():
        progress.show(await handle.query("stack", result_type=list[StackEntry]))
        await asyncio.wait({result}, timeout=PROGRESS_S)
    progress.show(await handle.query("stack", result_type=list[StackEntry]))
    turn: TurnResult = result.result()
    return turn


async def _print_stack(handle: WorkflowHandle[Any, Any]) -> None:
    from contract.models import StackEntry

    stack = await handle.query("stack", result_type=list[StackEntry])
    console.print(stack_table(handle.id, stack))


async def _status(handle: WorkflowHandle[Any, Any]) -> ConversationStatus:
    from contract.models import ConversationStatus

    status: ConversationStatus = await handle.query("state", result_type=ConversationStatus)
    return status


async def _answer_as(settings: Settings, agent_id: str, conversation: str) -> int:
    """Wait for the human agent's turn, show what it is asked, send the person's answer."""
    from agents.registry import AgentRegistry
    from runtime.client import connect
    from runtime.conversations import describe

    spec = AgentRegistry.load(settings.agents_file).get(agent_id)
    if spec.type != "human":
        raise P2eError(f"{agent_id} is a {spec.type} agent; --as answers for human agents")
    client = await connect(settings)
    root, _ = await describe(client, conversation)
    async with serving(client, settings):
        announced = False
        while True:
            handle = await _human_turn(client, root.id, agent_id)
            if handle is None:
                if not await _still_running(root):
                    note(f"{root.id} has finished")
                    return 0
                if not announced:
                    note(f"waiting for {agent_id}'s turn in {root.id} (Ctrl-C to stop)")
                    announced = True
                await asyncio.sleep(POLL_S)
                continue
            announced = False
            await _show_question(settings, handle)
            line = await _read_line(f"{agent_id}> ")
            if line is None or line.strip() == "/exit":
                return 0
            if not line.strip():
                note("an empty answer is not sent")
                continue
            turn = await _send(handle, "answer", line.strip())
            if turn is not None:
                note(f"answered in {handle.id}")


async def _human_turn(
    client: Client, root_id: str, agent_id: str
) -> WorkflowHandle[Any, Any] | None:
    """The conversation under `root_id` (itself or a delegated child) waiting for the agent."""
    from workflows import search

    query = (
        f"ExecutionStatus = 'Running' AND {search.AGENT.name} = '{agent_id}' AND "
        f"{search.STATE.name} = 'Waiting' AND "
        f"(WorkflowId = '{root_id}' OR WorkflowId STARTS_WITH '{root_id}/')"
    )
    async for execution in client.list_workflows(query, limit=10):
        handle = client.get_workflow_handle(execution.id)
        status = await _status(handle)
        if status.waiting_for == "human":
            return handle
    return None


async def _still_running(handle: WorkflowHandle[Any, Any]) -> bool:
    from runtime.conversations import is_running

    return is_running(await handle.describe())


async def _show_question(settings: Settings, handle: WorkflowHandle[Any, Any]) -> None:
    from contract.models import StackEntry
    from contract.states import State

    stack = await handle.query("stack", result_type=list[StackEntry])
    asked = next((e for e in reversed(stack) if e.kind is State.USER_MESSAGE), None)
    if asked is not None:
        console.print(
            f"[{handle.id}] {reply_text(settings, asked.ref, asked.preview)}", highlight=False
        )
