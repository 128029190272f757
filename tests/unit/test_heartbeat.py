"""An activity heartbeats every interval while a long block runs, not after it, and not at
all when the block ends before the first interval."""

from __future__ import annotations

import asyncio

from temporalio.testing import ActivityEnvironment

from p2engine.activities.heartbeat import heartbeating

EVERY_S = 0.05


async def beats_during(block_s: float) -> tuple[int, int]:
    """The heartbeats sent while a block of `block_s` ran, and those sent in all, counted
    a few intervals after it ended."""
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    async def activity_body() -> int:
        with heartbeating(EVERY_S):
            await asyncio.sleep(block_s)
        return len(beats)

    during = await env.run(activity_body)
    await asyncio.sleep(EVERY_S * 4)
    return during, len(beats)


async def test_a_long_block_heartbeats_until_it_ends() -> None:
    during, in_all = await beats_during(EVERY_S * 6)
    assert during >= 2
    assert in_all == during


async def test_a_short_block_sends_no_heartbeat() -> None:
    assert await beats_during(EVERY_S / 10) == (0, 0)
