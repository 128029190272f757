"""`p2e worker`: a standing worker for the conversation task queue."""

from __future__ import annotations

import asyncio
import signal
from enum import StrEnum
from typing import Annotated

import typer

from p2engine.cli.common import (
    AddressOption,
    NamespaceOption,
    console,
    note,
    run_async,
    settings_for,
)


class Serve(StrEnum):
    workflows = "workflows"
    models = "models"
    tools = "tools"


def worker(
    only: Annotated[
        list[Serve] | None,
        typer.Option(
            "--only",
            help="Serve only this (repeatable): workflows (with every activity, on the main "
            "queue), models (the model queues), tools (the tool queue). Default: all.",
        ),
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run a worker until Ctrl-C; running activities finish before it exits.

    With routing set (P2E_MODEL_QUEUE, P2E_TOOL_QUEUE, routing.model_rates), one worker
    serves every queue, or `--only` makes a pool of one kind."""
    settings = settings_for(address, namespace)
    roles = tuple(dict.fromkeys(only)) if only else tuple(Serve)

    async def serve() -> None:
        from p2engine.runtime.client import connect
        from p2engine.runtime.worker import running_worker

        client = await connect(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_worker(settings, client, roles=[r.value for r in roles]) as queues:
            console.print(
                f"worker ready: task queue {', '.join(repr(q) for q in queues)} at "
                f"{client.service_client.config.target_host} (Ctrl-C to stop)",
                highlight=False,
            )
            await stop.wait()
            note("draining: waiting for running activities to finish ...")
        note("worker stopped")

    run_async(serve())
