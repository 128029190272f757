"""`newest_started`: how many closed runs `conversation list` reads to hold the newest by
start, when visibility lists closed runs by close time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from p2engine.runtime.conversations import newest_started

T0 = datetime(2026, 12, 5, tzinfo=UTC)


@dataclass
class Run:
    id: str
    start_time: datetime
    close_time: datetime | None


def run(name: str, start: int, close: int | None) -> Run:
    closed = None if close is None else T0 + timedelta(seconds=close)
    return Run(name, T0 + timedelta(seconds=start), closed)


async def by_close(runs: list[Run], read: list[str]) -> AsyncIterator[Run]:
    for r in sorted(runs, key=lambda r: r.close_time or T0, reverse=True):
        read.append(r.id)
        yield r


async def test_a_long_run_that_closed_last_does_not_hide_a_newer_short_one() -> None:
    # A started first and closed last; B started later and closed before A did.
    runs = [run("A", 10, 100), run("B", 50, 60), run("C", 5, 8)]
    read: list[str] = []
    found = await newest_started([], by_close(runs, read), 1)  # type: ignore[arg-type]
    newest = max(found, key=lambda r: r.start_time)
    # After B (closed at 60) an unread run might still have started after B (at 55, say);
    # after C (closed at 8) none can: reading stops there.
    assert newest.id == "B" and read == ["A", "B", "C"]


async def test_running_runs_count_and_reading_stops_as_soon_as_it_can() -> None:
    running = [run("R", 90, None)]
    runs = [run(f"c{i}", i * 10, i * 10 + 5) for i in range(10)]
    read: list[str] = []
    found = await newest_started(running, by_close(runs, read), 3)  # type: ignore[arg-type]
    starts = sorted((r.start_time for r in found), reverse=True)[:3]
    assert starts == [T0 + timedelta(seconds=s) for s in (90, 90, 80)]
    assert read == ["c9", "c8", "c7"]
