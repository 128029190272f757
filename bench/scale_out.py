"""Conversations per second with 1, 2 and 3 worker processes sharing PostgreSQL, beside the
embedded single-process figure, in one run on one dev server.

Each trial starts the same mix of scripted conversations at once (a delegation with a tool
in the child, a tool call, a payment) on a task queue of its own and times them from the
first start to the last result:

- `embedded`: one worker in this process on the state dir's store and SQLite ledger, as
  `p2e run` and a lone `p2e worker` run (the baseline);
- `shared xN`: N `p2e worker` processes, each with a state dir of its own (as on machines
  of their own), sharing the store, the tool cache and the ledger in PostgreSQL.

Figures are ratios against the baseline of the same run. On a machine with few cores the
dev server, PostgreSQL, the workers and this client share them: once they are busy, more
worker processes add no throughput, and the ratio says so.

    python -m bench.scale_out [--conversations N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from p2engine.contract.states import FinishReason
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.postgres_server import private_postgres
from p2engine.runtime.settings import Settings
from p2engine.runtime.testbed import fleet_env, private_temporal, worker_fleet
from p2engine.runtime.worker import build_worker

MESSAGES = [
    "delegate to agent_helper: the weather in Oslo",
    "What's the weather in Paris?",
    "Transfer 1 to agent_beta for checking the forecast",
]
P2E = str(Path(sys.executable).parent / "p2e")


def trial_settings(base: Settings, state_dir: Path, database_url: str | None) -> Settings:
    """`base` on a task queue of its own, with this trial's state dir and database."""
    temporal = base.temporal.model_copy(update={"task_queue": f"scale-{uuid.uuid4().hex[:8]}"})
    update = {"temporal": temporal, "state_dir": state_dir, "database_url": database_url}
    return base.model_copy(update=update)


def open_wallets(settings: Settings) -> None:
    env = fleet_env(settings, settings.state_dir, settings.database_url)
    subprocess.run([P2E, "ledger", "init"], env=env, check=True, capture_output=True)


async def conversations_per_second(settings: Settings, count: int) -> float:
    """Start `count` conversations at once and wait for every one; conversations/second."""
    conversations = ConversationClient(settings)
    begun = time.perf_counter()
    handles = []
    for n in range(count):
        inp = conversations.build_input("agent_alpha", MESSAGES[n % len(MESSAGES)])
        handle, _ = await conversations.start(inp)
        handles.append(handle)
    results = await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - begun
    failed = [r.conversation_id for r in results if r.reason is not FinishReason.DONE]
    if failed:
        raise RuntimeError(f"{len(failed)} conversations did not finish done: {failed[:3]}")
    return count / elapsed


async def bench(args: argparse.Namespace, root: Path) -> int:
    database_root = root / "postgres"
    database_root.mkdir()
    database_root.chmod(0o711)  # as root, the server runs as a user of its own
    with private_postgres(database_root) as server_url:
        async with private_temporal(root / "temporal", "scale") as temporal:
            embedded = trial_settings(temporal.settings, root / "embedded", None)
            open_wallets(embedded)
            async with build_worker(temporal.client, embedded):
                baseline = await conversations_per_second(embedded, args.conversations)
            print(f"embedded, 1 process:  {baseline:6.1f} conversations/s  (baseline)")
            for workers in (1, 2, 3):
                url = new_database(server_url, f"scale_{workers}")
                shared = trial_settings(temporal.settings, root / f"client-{workers}", url)
                open_wallets(shared)
                with worker_fleet(shared, url, root / f"fleet-{workers}", workers):
                    rate = await conversations_per_second(shared, args.conversations)
                print(
                    f"shared x{workers} workers:    {rate:6.1f} conversations/s  "
                    f"shared/embedded: {rate / baseline:.2f}"
                )
    print(f"({os.cpu_count()} cores shared by the dev server, PostgreSQL, the workers and "
          f"the client; {args.conversations} conversations per trial)")  # fmt: skip
    return 0


def new_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=90, help="per trial")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2e-scale-") as root:
        Path(root).chmod(0o755)
        sys.exit(asyncio.run(bench(args, Path(root))))


if __name__ == "__main__":
    main()
