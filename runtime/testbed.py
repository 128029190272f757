"""A private dev server with settings and a client that point at it: the setup the test
session, the golden recording and every benchmark share, so they all run the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from p2engine.runtime.client import connect
from p2engine.runtime.settings import Settings, TemporalSettings
from p2engine.runtime.temporal_server import DevServer, private_dev_server


@dataclass(frozen=True)
class PrivateTemporal:
    server: DevServer
    settings: Settings
    client: Client


@asynccontextmanager
async def private_temporal(state_dir: Path, task_queue: str) -> AsyncIterator[PrivateTemporal]:
    """A throwaway dev server in `state_dir`, with settings that name it as TEMPORAL_ADDRESS
    would (so nothing starts the embedded server) and a connected client; stopped on exit."""
    with private_dev_server(state_dir) as server:
        settings = Settings(
            state_dir=state_dir,
            temporal=TemporalSettings(address=server.config.address, task_queue=task_queue),
        )
        yield PrivateTemporal(server, settings, await connect(settings))
