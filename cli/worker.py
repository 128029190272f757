"""`p2e worker`: a standing worker for the conversation task queue."""

from __future__ import annotations

import asyncio
import signal

from p2engine.cli.common import (
    AddressOption,
    NamespaceOption,
    console,
    note,
    run_async,
    settings_for,
)


def worker(address: AddressOption = None, namespace: NamespaceOption = None) -> None:
    """Run a worker until Ctrl-C; running activities finish before it exits."""
    settings = settings_for(address, namespace)

    async def serve() -> None:
        from p2engine.runtime.client import connect
        from p2engine.runtime.worker import running_worker

        client = await connect(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_worker(settings, client):
            console.print(
                f"worker ready: task queue '{settings.temporal.task_queue}' at "
                f"{client.service_client.config.target_host} (Ctrl-C to stop)",
                highlight=False,
            )
            await stop.wait()
            note("draining: waiting for running activities to finish ...")
        note("worker stopped")

    run_async(serve())
