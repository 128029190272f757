"""`p2e chat`: talk to an agent in an interactive conversation, or answer as a human agent.

Each message is a `send_message` Workflow Update: it returns when the agent has replied, and
tool calls and delegations print while they happen. Lines come from a terminal or a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from p2engine.cli.common import (
    AddressOption,
    NamespaceOption,
    console,
    note,
    run_async,
    serving,
    settings_for,
)
from p2engine.cli.display import Progress, reply_text, stack_table
from p2engine.contract.errors import InvalidInput, P2eError

if TYPE_CHECKING:
    from temporalio.client import WorkflowUpdateHandle

    from p2engine.contract.models import TurnResult
    from p2engine.runtime.conversations import ConversationClient, ConversationHandle
    from p2engine.runtime.settings import Settings

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
        str | None, typer.Option("--model", help="litellm model string for this chat.")
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


async def _active_branch(conversations: ConversationClient, name: str) -> str | None:
    """The branch a rewound conversation continues in; None when there is none (or no
    conversation by that name yet)."""
    from p2engine.contract.errors import ConversationNotFound
    from p2engine.runtime.branches import ActiveBranches, Branches

    try:
        handle, _ = await conversations.describe(name)
        active = await ActiveBranches(Branches(conversations)).active(handle.id)
    except ConversationNotFound:
        return None
    return None if active == handle.id else active


async def _chat(settings: Settings, agent_id: str, name: str | None, model: str | None) -> int:
    from p2engine.runtime.conversations import ConversationClient

    conversations = ConversationClient(settings)
    inp = conversations.build_input(agent_id, None, model=model, interactive=True)
    active = await _active_branch(conversations, name) if name is not None else None
    if active is not None:
        handle, started = await conversations.attach(active), False
        note(f"continuing the active branch of {name}: {active}")
    else:
        handle, started = await conversations.start(inp, name=name)
    async with serving(await conversations.temporal(), settings):
        status = await conversations.status(handle)
        if status.agent_id != agent_id:
            raise P2eError(f"{handle.id} is a conversation with {status.agent_id}, not {agent_id}")
        if status.reason is not None:
            raise P2eError(f"{handle.id} has finished ({status.reason}); start a new chat")
        note(f"{'started' if started else 'attached to'} {handle.id} · {HELP}")
        while True:
            line = await _read_line("you> ")
            if line is None or line.strip() == "/exit":
                note(f"{handle.id} stays open; re-attach with: p2e chat {agent_id} -c {handle.id}")
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/stack":
                console.print(stack_table(handle.id, await conversations.stack(handle)))
            elif text == "/end":
                await conversations.end(handle)
                note(f"{handle.id} ended")
                return 0
            elif text.startswith("/"):
                note(f"unknown command {text}; {HELP}")
            else:
                turn = await _send(conversations, handle, conversations.start_send, text)
                if turn is None:
                    continue
                if turn.reply_ref or turn.reply_preview:
                    shown = await reply_text(settings, turn.reply_ref, turn.reply_preview)
                    console.print(f"{agent_id}> {shown}", highlight=False)
                if turn.reason is not None:
                    return _finished(handle.id, turn)


def _finished(conversation_id: str, turn: TurnResult) -> int:
    """Say how the conversation ended, with the reason a failed step gave; exit 1 unless
    it ended done."""
    from p2engine.contract.states import FinishReason, State

    last = next((e for e in reversed(turn.entries) if e.kind is State.FINISHED), None)
    why = f": {last.preview}" if last is not None and last.preview else ""
    note(f"{conversation_id} finished: {turn.reason}{why}")
    return 0 if turn.reason is FinishReason.DONE else 1


async def _send(
    conversations: ConversationClient,
    handle: ConversationHandle,
    deliver: Callable[[ConversationHandle, str], Awaitable[WorkflowUpdateHandle[TurnResult]]],
    text: str,
) -> TurnResult | None:
    """Deliver a message or answer (`deliver` starts its update); tool calls and delegations
    print while they happen."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    before = len(await conversations.stack(handle))
    try:
        pending = await deliver(handle, text)
    except WorkflowUpdateFailedError as exc:
        note(f"refused: {getattr(exc.cause, 'message', exc.cause)}")
        return None
    result = asyncio.ensure_future(pending.result())
    progress = Progress(printed=before, kinds=PROGRESS_KINDS)
    while not result.done():
        # A query can find the worker that last ran the workflow gone (another `p2e`
        # process that has exited): the next one is answered by a worker still here.
        with contextlib.suppress(RPCError):
            progress.show(await conversations.stack(handle))
        await asyncio.wait({result}, timeout=PROGRESS_S)
    turn = result.result()
    progress.show_turn(before, turn.entries)  # from the update's result: no query needed
    return turn


async def _answer_as(settings: Settings, agent_id: str, conversation: str) -> int:
    """Wait for the human agent's turn, show what it is asked, send the person's answer."""
    from p2engine.agents.registry import AgentRegistry
    from p2engine.runtime.conversations import ConversationClient

    spec = AgentRegistry.load(settings.agents_file).get(agent_id)
    if spec.type != "human":
        raise P2eError(f"{agent_id} is a {spec.type} agent; --as answers for human agents")
    conversations = ConversationClient(settings)
    root = await conversations.attach(conversation)
    async with serving(await conversations.temporal(), settings):
        announced = False
        while True:
            handle = await conversations.human_turn(root.id, agent_id)
            if handle is None:
                if not await conversations.running(root):
                    note(f"{root.id} has finished")
                    return 0
                if not announced:
                    note(f"waiting for {agent_id}'s turn in {root.id} (Ctrl-C to stop)")
                    announced = True
                await asyncio.sleep(POLL_S)
                continue
            announced = False
            await _show_question(settings, conversations, handle)
            line = await _read_line(f"{agent_id}> ")
            if line is None or line.strip() == "/exit":
                return 0
            if not line.strip():
                note("an empty answer is not sent")
                continue
            turn = await _send(conversations, handle, conversations.start_answer, line.strip())
            if turn is not None:
                note(f"answered in {handle.id}")


async def _show_question(
    settings: Settings, conversations: ConversationClient, handle: ConversationHandle
) -> None:
    from p2engine.contract.states import State

    stack = await conversations.stack(handle)
    asked = next((e for e in reversed(stack) if e.kind is State.USER_MESSAGE), None)
    if asked is not None:
        question = await reply_text(settings, asked.ref, asked.preview)
        console.print(f"[{handle.id}] {question}", highlight=False)
