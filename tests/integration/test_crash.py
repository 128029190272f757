"""Nothing is lost when a worker dies: a conversation whose model call is in flight when its
worker is SIGKILLed is finished by another worker, and its finished tool call is not re-run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

from p2engine.contract.models import StackEntry
from p2engine.contract.states import FinishReason, State
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import Settings
from p2engine.runtime.worker import build_worker
from tests.conftest import queue_settings
from tests.integration.helpers import activity_attempts, agent, local_runs

P2E = str(Path(sys.executable).parent / "p2e")


async def wait_for(predicate_coro, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate_coro():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


async def test_worker_killed_mid_conversation_another_worker_finishes_it(
    client: Client, settings: Settings, cli_env: dict[str, str]
) -> None:
    crash = queue_settings(settings)
    env = {
        **cli_env,
        "P2E_TASK_QUEUE": crash.temporal.task_queue,
        "P2E_SCRIPTED_LATENCY_MS": "2000",
    }
    doomed = subprocess.Popen(
        [P2E, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        handle, _ = await start_conversation(
            client, crash, agent(settings), "What's the weather in Paris?"
        )

        async def tool_done() -> bool:
            stack = await handle.query("stack", result_type=list[StackEntry])
            return any(entry.kind is State.TOOL_RESULT for entry in stack)

        # The first model call takes 2 s, the tool runs, then the second model call sleeps.
        await wait_for(tool_done, timeout=30)
        await asyncio.sleep(0.5)
    finally:
        doomed.kill()  # SIGKILL: no draining, no goodbye to the server
        doomed.wait()

    async with build_worker(client, crash):
        result = await asyncio.wait_for(handle.result(), timeout=90)

    assert result.reason is FinishReason.DONE
    assert "Paris" in result.reply_preview
    attempts = await activity_attempts(handle)
    # A quick tool runs inside the workflow task: its marker records its one run.
    runs = await local_runs(handle, "run_tool")
    assert [r["attempt"] for r in runs] == [1], "the tool ran exactly once"
    assert attempts["llm_step"] == [1, 2], "the interrupted model call was retried"
