"""`p2e run`: start a one-shot conversation and print the agent's reply."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
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
    ui_url,
    warn_without_worker,
)
from p2engine.cli.display import Progress, hint_human_waits, reply_text, score_summary

if TYPE_CHECKING:
    from p2engine.contract.models import ConversationResult
    from p2engine.runtime.settings import Settings


def run(
    message: Annotated[
        str,
        typer.Argument(
            help="The user message that opens the conversation, or a rollout file (*.yml) "
            "to run as `p2e rollout start FILE --follow`."
        ),
    ],
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent id from agents.yml.")] = (
        "agent_alpha"
    ),
    name: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Conversation name (workflow id conv-NAME); an existing one is attached to.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="litellm model string for this run.")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Print the conversation id and return.")
    ] = False,
    evaluators: Annotated[
        str | None,
        typer.Option(
            "--eval",
            metavar="ID[,ID]",
            help="Evaluators that score this conversation, beside the agent's own (p2e eval list).",
        ),
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run a conversation with an agent and print its reply, or a rollout file."""
    settings = settings_for(address, namespace)
    if message.endswith((".yml", ".yaml")) and Path(message).is_file():
        from p2engine.cli.rollouts import start_file

        raise typer.Exit(start_file(Path(message), model, settings))
    ids = [part.strip() for part in (evaluators or "").split(",") if part.strip()]
    raise typer.Exit(run_async(_run(settings, agent, message, name, model, detach, ids)))


async def _run(
    settings: Settings,
    agent_id: str,
    message: str,
    name: str | None,
    model: str | None,
    detach: bool,
    evaluators: list[str],
) -> int:
    from p2engine.runtime.conversations import ConversationClient

    conversations = ConversationClient(settings)
    inp = conversations.build_input(agent_id, message, model=model, evaluators=evaluators)
    handle, started = await conversations.start(inp, name=name)
    if not started:
        note(f"{handle.id} already exists; attaching to it")
    if detach:
        console.print(handle.id, highlight=False)
        await warn_without_worker(await conversations.temporal(), settings)
        return 0
    if not started and not await conversations.running(handle):
        return await _print_result(settings, await handle.result())
    progress = Progress(conversation=handle.id)
    followers = [asyncio.create_task(progress.follow(partial(conversations.stack, handle)))]
    if any(agent.type == "human" for agent in inp.catalog.agents):
        waits = partial(conversations.human_waits, handle.id)
        followers.append(asyncio.create_task(hint_human_waits(waits, handle.id)))
    try:
        async with serving(await conversations.temporal(), settings):
            result = await handle.result()
    finally:
        for follower in followers:
            follower.cancel()
    progress.show(result.stack)
    return await _print_result(settings, result)


async def _print_result(settings: Settings, result: ConversationResult) -> int:
    from p2engine.contract.states import FinishReason

    console.print(
        await reply_text(settings, result.reply_ref, result.reply_preview), highlight=False
    )
    usage = result.usage
    judged = result.eval_usage
    spent = None
    if judged.total_tokens or judged.cost_usd:
        spent = f"{judged.total_tokens} tokens, ${judged.cost_usd:.4f}"
    score = f", {summary}" if (summary := score_summary(result.stack, spent)) else ""
    note(
        f"finished: {result.reason} after {result.steps} steps, {usage.total_tokens} tokens, "
        f"${usage.cost_usd:.4f}{score}"
    )
    console.print(f"conversation: {result.conversation_id}", highlight=False)
    if link := ui_url(settings, result.conversation_id):
        console.print(f"web ui: {link}", highlight=False)
    return 0 if result.reason is FinishReason.DONE else 1
