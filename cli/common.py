"""Options and helpers every command shares. Nothing heavy is imported here: `p2e --help`
must stay fast, so Temporal and litellm load inside the commands that need them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from temporalio.client import Client

T = TypeVar("T")

# Printed text is agent and user content, never Rich markup: "[ok]" must stay as it is.
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Temporal host:port to use instead of the embedded dev server [env: TEMPORAL_ADDRESS]",
        show_default=False,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", help="Temporal namespace [env: TEMPORAL_NAMESPACE]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_for(address: str | None = None, namespace: str | None = None) -> Settings:
    return load_settings({"temporal.address": address, "temporal.namespace": namespace})


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def note(message: str) -> None:
    """Progress and context go to stderr, so stdout stays clean for the answer or JSON."""
    err_console.print(message, style="dim", highlight=False)


def ui_url(settings: Settings, workflow_id: str | None = None) -> str | None:
    if settings.temporal.address:
        base = settings.temporal.ui_url
    else:
        from runtime.temporal_server import load_dev_server_config

        base = load_dev_server_config(settings).ui_url
    if base is None:
        return None
    base = base.rstrip("/") + f"/namespaces/{settings.temporal.namespace}/workflows"
    return f"{base}/{workflow_id}" if workflow_id else base


@asynccontextmanager
async def serving(client: Client, settings: Settings) -> AsyncIterator[None]:
    """Make sure a worker serves the task queue while the block runs: a standing `p2e worker`
    if one polls, otherwise one in this process."""
    from runtime.worker import build_worker, standing_worker_present

    if await standing_worker_present(client, settings):
        yield
        return
    note("no worker is running; running one in this process")
    async with build_worker(client, settings, ephemeral=True):
        yield
