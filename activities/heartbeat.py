"""Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the much
longer start-to-close timeout of a slow model call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from temporalio import activity


@asynccontextmanager
async def heartbeating(every_s: float = 1.0) -> AsyncIterator[None]:
    """Heartbeat every `every_s` while the block runs. The first beat comes after `every_s`:
    Temporal's heartbeat timeout already counts from the start, and a call that ends sooner
    (a fast model, the scripted one) sends none, saving a round trip to the server."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
