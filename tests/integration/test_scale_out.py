"""Workers on many machines: each simulated by a state dir of its own, so that only what
they are told to share (Temporal, and the database of P2E_DATABASE_URL) is shared."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

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
