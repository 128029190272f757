"""Workers on many machines: each simulated by a state dir of its own, so that only what
they are told to share (Temporal, and the database of P2E_DATABASE_URL) is shared."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path

from p2engine.contract.states import FinishReason, State
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.rollouts import RolloutClient
from p2engine.runtime.settings import Settings, ledger_for
from p2engine.runtime.testbed import fleet_env, worker_fleet
from p2engine.store import store_for
from tests.conftest import queue_settings
from tests.integration.test_cli import P2E, p2e


def test_a_worker_on_another_store_refuses_the_steps_and_says_why(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    starter = {**cli_env, "P2E_STATE_DIR": str(tmp_path / "laptop")}
    elsewhere = {**cli_env, "P2E_STATE_DIR": str(tmp_path / "server")}
    name = f"wrong-store-{uuid.uuid4().hex[:8]}"
    assert p2e("run", "-d", "--id", name, "weather in Paris?", env=starter).returncode == 0
    worker = subprocess.Popen([P2E, "worker"], env=elsewhere, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert worker.stdout is not None and "worker ready" in worker.stdout.readline()
        status = "running"
        for _ in range(600):
            listed = json.loads(p2e("conversation", "list", "--json", env=starter).stdout)
            status = next(c["status"] for c in listed if c["id"] == f"conv-{name}")
            if status != "running":
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    # Never a conversation that completes without its content: the step fails at once, and
    # the stack says which stores differ and what to do.
    assert status == "completed"
    shown = json.loads(p2e("conversation", "show", name, "--json", env=starter).stdout)
    finished = shown["stack"][-1]
    assert finished["kind"] == "Finished" and finished["reason"] == "error"
    assert finished["preview"].startswith(
        "agent step failed: WrongStore: this worker's artifact store is not the conversation's; "
        "share one with P2E_DATABASE_URL"
    ), finished


def test_a_second_worker_on_another_store_refuses_to_start(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = {**cli_env, "P2E_STATE_DIR": str(tmp_path / "one")}
    second = {**cli_env, "P2E_STATE_DIR": str(tmp_path / "two")}
    worker = subprocess.Popen([P2E, "worker"], env=first, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert worker.stdout is not None and "worker ready" in worker.stdout.readline()
        refused = p2e("worker", env=second, timeout=60)
        same_store = subprocess.Popen([P2E, "worker"], env=first, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        assert same_store.stdout is not None and "worker ready" in same_store.stdout.readline()
        same_store.terminate()
        same_store.wait(timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: worker ") and "from another artifact store" in line
    assert line.endswith("workers share one store through P2E_DATABASE_URL")


def test_model_and_tool_pools_serve_their_own_queues_rate_limited_by_provider(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    queue = cli_env["P2E_TASK_QUEUE"]
    config = tmp_path / "p2e.yaml"
    config.write_text("routing:\n  model_rates: {scripted: 20}\n")
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path / "state"), "P2E_CONFIG": str(config),
           "P2E_MODEL_QUEUE": f"{queue}-models", "P2E_TOOL_QUEUE": f"{queue}-tools"}  # fmt: skip
    pools = []
    try:
        for only, serves in [("workflows", f"'{queue}'"), ("models", f"'{queue}-models-scripted'"),
                             ("tools", f"'{queue}-tools'")]:  # fmt: skip
            pool = subprocess.Popen([P2E, "worker", "--only", only], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
            pools.append(pool)
            assert pool.stdout is not None
            ready = pool.stdout.readline()
            assert "worker ready" in ready and serves in ready, ready
        name = f"routed-{uuid.uuid4().hex[:8]}"
        done = p2e("run", "--id", name, "weather in Paris?", env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "no worker is running" not in done.stderr
        history = p2e("replay", name, "--json", env=env)
        assert history.returncode == 0, history.stderr
    finally:
        for pool in pools:
            pool.terminate()
        for pool in pools:
            pool.wait(timeout=60)
    queues = scheduled_queues(env, f"conv-{name}")
    assert queues["llm_step"] == {f"{queue}-models-scripted"}
    assert queues["run_tool"] == {f"{queue}-tools"}


def scheduled_queues(env: dict[str, str], workflow_id: str) -> dict[str, set[str]]:
    """Each activity type the workflow scheduled, and the task queues it went to."""
    import asyncio

    from temporalio.client import Client

    async def read() -> dict[str, set[str]]:
        client = await Client.connect(env["TEMPORAL_ADDRESS"])
        found: dict[str, set[str]] = {}
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                attrs = event.activity_task_scheduled_event_attributes
                found.setdefault(attrs.activity_type.name, set()).add(attrs.task_queue.name)
        return found

    return asyncio.run(read())


def test_a_pool_with_nothing_to_serve_says_so(cli_env: dict[str, str]) -> None:
    refused = p2e("worker", "--only", "models", env=cli_env, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: nothing to serve as models: no such queue is set "
        "(routing.models, routing.model_rates or routing.tools)"
    )


FLEET_CONVERSATIONS = 200
FLEET_MESSAGES = [
    "delegate to agent_helper: the weather in Oslo",  # delegation, and a tool in the child
    "What's the weather in Paris?",  # a tool
    "Transfer 1 to agent_beta for checking the forecast",  # a payment
]
FLEET_ROLLOUT = """\
repeats: 50
concurrency: 10
teams:
  desk:
    initial_message: What's the weather in Rome?
    base: {agent_id: agent_alpha, model: scripted/default}
    variants:
      - id: direct
      - {id: delegated, initial_message: "delegate to agent_helper: the weather in Rome"}
    eval: {evaluator_id: tool_succeeded}
"""


async def test_three_workers_on_three_machines_share_conversations_content_and_money(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """200 conversations with delegation, tools and payments and a 100-arm rollout on three
    workers that share only Temporal and PostgreSQL; one is SIGKILLed in the middle."""
    own = queue_settings(settings)
    starter = own.model_copy(
        update={"state_dir": tmp_path / "laptop", "database_url": database_url}
    )
    init = p2e("ledger", "init", env=fleet_env(starter, starter.state_dir, database_url))
    assert init.returncode == 0, init.stderr
    run = uuid.uuid4().hex[:6]
    conversations = ConversationClient(starter)
    rollouts = RolloutClient(starter)
    (tmp_path / "fleet.yml").write_text(FLEET_ROLLOUT)
    with worker_fleet(own, database_url, tmp_path, 3) as fleet:
        handles = []
        for n in range(FLEET_CONVERSATIONS):
            message = FLEET_MESSAGES[n % len(FLEET_MESSAGES)]
            inp = conversations.build_input("agent_alpha", message)
            handle, started = await conversations.start(inp, name=f"fleet-{run}-{n:03d}")
            assert started
            handles.append(handle)
        rollout = await rollouts.start(
            rollouts.prepare(tmp_path / "fleet.yml").input, name=f"fleet-{run}"
        )
        results = [asyncio.ensure_future(h.result()) for h in handles]
        while sum(r.done() for r in results) < FLEET_CONVERSATIONS // 3:
            await asyncio.sleep(0.2)
        fleet.kill(1)  # its machine dies, mid-run
        finished = await asyncio.wait_for(asyncio.gather(*results), timeout=600)
        settled = await asyncio.wait_for(rollout.result(), timeout=600)

    # Every conversation and arm completed once, and no step missed its content.
    assert [r.reason for r in finished] == [FinishReason.DONE] * FLEET_CONVERSATIONS
    assert all(e.kind is not State.FINISHED or e.reason is FinishReason.DONE
               for r in finished for e in r.stack)  # fmt: skip
    client = await conversations.temporal()
    runs = [e async for e in client.list_workflows(f"WorkflowId STARTS_WITH 'conv-fleet-{run}-'")]
    roots = [e for e in runs if "/" not in e.id]
    assert len(roots) == FLEET_CONVERSATIONS == len({e.id for e in roots})
    # The three machines shared the work (the killed one before it died).
    served: set[str] = set()
    for handle in handles:
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_started_event_attributes"):
                served.add(event.activity_task_started_event_attributes.identity.split("#")[0])
    assert served == {f"{w.pid}@{socket.gethostname()}" for w in fleet.workers}
    records = await rollouts.records(await rollout.describe())
    assert settled.total == 100 and len(records) == 100
    assert {r.status for r in records} == {"done"} and len({r.key for r in records}) == 100

    # Every payment moved money once, and the journal still proves every balance.
    payments = sum(1 for n in range(FLEET_CONVERSATIONS) if "Transfer" in FLEET_MESSAGES[n % 3])
    elsewhere = tmp_path / "reader"  # a fourth machine, that ran nothing
    reader = starter.model_copy(update={"state_dir": elsewhere})
    ledger = ledger_for(reader)
    try:
        moved = [e for e in await ledger.audit(kind="transfer", limit=10_000)
                 if e.reference.startswith(f"conv-fleet-{run}-")]  # fmt: skip
        assert len(moved) == payments == len({e.reference for e in moved})
        assert (await ledger.verify()).ok
    finally:
        await ledger.close()
    verified = p2e("ledger", "verify", env=fleet_env(reader, elsewhere, database_url))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Every transcript reads back on the fourth machine, through the store and the CLI.
    async with store_for(reader) as store:
        for result in finished:
            assert result.reply_ref is not None
            chain = await store.chain(result.reply_ref)
            assert chain[0].kind is State.USER_MESSAGE and chain[-1].ref() == result.reply_ref
    for n in (0, 1, 2):
        shown = p2e("artifact", "show", f"fleet-{run}-{n:03d}", "--json",
                    env=fleet_env(reader, elsewhere, database_url))  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "not in" not in shown.stdout
    assert not (elsewhere / "artifacts").exists()
