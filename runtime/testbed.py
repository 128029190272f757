"""A private dev server with settings and a client that point at it, and a fleet of worker
processes on "machines" of their own: the setup the test session, the golden recording and
every benchmark share, so they all run the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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


@dataclass
class Fleet:
    """`p2e worker` processes, each with a state dir of its own (as on machines of their
    own), sharing only Temporal and the database of `P2E_DATABASE_URL`."""

    workers: list[subprocess.Popen[str]]
    envs: list[dict[str, str]]

    def kill(self, index: int) -> None:
        """SIGKILL one worker: no draining, as when its machine dies."""
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(timeout=30)


def fleet_env(settings: Settings, state_dir: Path, database_url: str | None) -> dict[str, str]:
    """The environment of a `p2e` process on its own machine: Temporal and the task queue
    of `settings`, its own state dir, and the shared database when there is one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("P2E_", "TEMPORAL_"))}
    env.update(
        {
            "TEMPORAL_ADDRESS": settings.temporal.address or "",
            "TEMPORAL_NAMESPACE": settings.temporal.namespace,
            "P2E_TASK_QUEUE": settings.temporal.task_queue,
            "P2E_STATE_DIR": str(state_dir),
        }
    )
    if database_url:
        env["P2E_DATABASE_URL"] = database_url
    return env


@contextmanager
def worker_fleet(
    settings: Settings, database_url: str | None, root: Path, count: int
) -> Iterator[Fleet]:
    """`count` workers started and ready (each printed its "worker ready" line); stopped
    with SIGTERM (draining) on exit."""
    p2e = str(Path(sys.executable).parent / "p2e")
    envs = [fleet_env(settings, root / f"machine-{n}", database_url) for n in range(count)]
    fleet = Fleet([], envs)
    try:
        for env in envs:
            worker = subprocess.Popen(
                [p2e, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True,
            )  # fmt: skip
            fleet.workers.append(worker)
            assert worker.stdout is not None
            ready = worker.stdout.readline()
            if "worker ready" not in ready:
                raise RuntimeError(f"a fleet worker did not start: {ready!r}")
        yield fleet
    finally:
        for worker in fleet.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in fleet.workers:
            worker.wait(timeout=60)
