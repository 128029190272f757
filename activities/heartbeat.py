"""Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the much
longer start-to-close timeout of a slow model call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity


@contextmanager
def heartbeating(every_s: float = 1.0) -> Iterator[None]:
    """Heartbeat every `every_s` while the block runs. The first beat comes after `every_s`:
    Temporal's heartbeat timeout already counts from the start, and a call that ends sooner
    (a fast model, the scripted one) sends none, saving a round trip to the server. A timer
    on the event loop rather than a task: most blocks end before it fires, and a timer costs
    a fraction of a task's start and cancellation."""
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle

    def beat() -> None:
        nonlocal timer
        activity.heartbeat()
        timer = loop.call_later(every_s, beat)

    timer = loop.call_later(every_s, beat)  # runs in this activity's context
    try:
        yield
    finally:
        timer.cancel()
