"""`p2e config`: change a running conversation's agent from its next step on.

Each change is a Workflow Update, checked by the workflow's validator before it is accepted,
and is recorded on the stack entries of the steps it applies to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    print_json,
    run_async,
    serving,
    settings_for,
)
from p2engine.contract.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from p2engine.contract.models import Overrides
    from p2engine.runtime.conversations import ConversationClient, ConversationHandle
    from p2engine.runtime.settings import Settings

    Change = Callable[[ConversationClient, ConversationHandle], Awaitable[Overrides]]

app = typer.Typer(
    help="Change a running conversation's persona, tools or model.", no_args_is_help=True
)

DEFAULT = "default"  # drop the override and use agents.yml again
ConversationArg = Annotated[str, typer.Argument(help="Conversation id (conv-NAME) or NAME.")]


@app.command("set-behavior")
def set_behavior(
    conversation: ConversationArg,
    persona: Annotated[
        str, typer.Argument(help="Persona name, 'none' for no persona, or 'default'.")
    ],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Apply a persona from config/personas/ from the next step."""
    value = None if persona == DEFAULT else persona
    _apply(settings_for(address, namespace), conversation, lambda c, h: c.set_behavior(h, value))


@app.command("set-tools")
def set_tools(
    conversation: ConversationArg,
    tools: Annotated[
        str, typer.Argument(help="Comma-separated tool names, 'none' for no tools, or 'default'.")
    ],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Replace the tools the agent may call, from the next step."""
    value: list[str] | None
    if tools == DEFAULT:
        value = None
    elif tools == "none":
        value = []
    else:
        value = [name.strip() for name in tools.split(",")]
        if "" in value:
            raise InvalidInput(
                f"tools must be comma-separated names, 'none' or 'default', not {tools!r}"
            )
    _apply(settings_for(address, namespace), conversation, lambda c, h: c.set_tools(h, value))


@app.command("set-model")
def set_model(
    conversation: ConversationArg,
    model: Annotated[str, typer.Argument(help="litellm model string, or 'default'.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Use another model from the next step."""
    from p2engine.runtime.conversations import check_model

    value = None if model == DEFAULT else model
    if value is not None:
        check_model(value)  # before anything connects; the client checks it again
    _apply(settings_for(address, namespace), conversation, lambda c, h: c.set_model(h, value))


@app.command("show-overrides")
def show_overrides(
    conversation: ConversationArg,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show the overrides in force and what agents.yml says."""
    settings = settings_for(address, namespace)
    conversation_id, overrides = run_async(_overrides(settings, conversation))
    _print(conversation_id, overrides, as_json)


def _apply(settings: Settings, conversation: str, change: Change) -> None:
    conversation_id, overrides = run_async(_update(settings, conversation, change))
    _print(conversation_id, overrides, as_json=False)


async def _update(settings: Settings, conversation: str, change: Change) -> tuple[str, Overrides]:
    from p2engine.contract.errors import P2eError
    from p2engine.runtime.conversations import ConversationClient, is_running

    conversations = ConversationClient(settings)
    handle, description = await conversations.describe(conversation)
    if not is_running(description):
        raise P2eError(f"{handle.id} is not running; overrides apply to running conversations")
    async with serving(await conversations.temporal(), settings):
        overrides = await change(conversations, handle)
    return handle.id, overrides


async def _overrides(settings: Settings, conversation: str) -> tuple[str, Overrides]:
    from p2engine.runtime.conversations import ConversationClient

    conversations = ConversationClient(settings)
    handle = await conversations.attach(conversation)
    async with serving(await conversations.temporal(), settings):
        overrides = await conversations.overrides(handle)
    return handle.id, overrides


def _print(conversation_id: str, overrides: Overrides, as_json: bool) -> None:
    from p2engine.contract.models import preview

    if as_json:
        print_json({"conversation_id": conversation_id, **overrides.model_dump(mode="json")})
        return
    shown = {
        "persona": overrides.persona,
        "tools": None if overrides.tools is None else ", ".join(overrides.tools) or "none",
        "model": overrides.model,
        # Set only by a learning run's push (propagation every N steps).
        "system_prompt": None
        if overrides.system_prompt is None
        else preview(overrides.system_prompt, 60),
        "temperature": overrides.temperature,
    }
    console.print(f"{conversation_id} overrides (from the next step):", highlight=False)
    for key, value in shown.items():
        console.print(f"  {key}: {value if value is not None else '(agents.yml)'}", highlight=False)
