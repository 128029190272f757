"""What a branch costs: branching a finished 200-step conversation after step 10 and after
step 200, taking turns on one private dev server, with the time to branch (from the
command to the branch started: its source's history fetched and replayed, the state at the
step stored, the branch workflow started) and the branch's start-input bytes.

A branch's input names its state in the artifact store instead of carrying it, so the
input is the same size wherever the branch starts; the state it names holds the stack up
to the step, and that figure is printed too. The branches start on a task queue no worker
polls, so none of them runs while the next is timed.

    python -m bench.branch [--steps N] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from p2engine.agents.registry import AgentRegistry
from p2engine.contract.agent import AgentLimits
from p2engine.contract.models import ConversationInput
from p2engine.runtime.branches import BranchChanges, Branches
from p2engine.runtime.conversations import ConversationClient, start_conversation
from p2engine.runtime.converter import DATA_CONVERTER
from p2engine.runtime.settings import Settings
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker
from p2engine.store import store_for


async def bench(args: argparse.Namespace, state_dir: Path) -> int:
    calls = args.steps // 2  # each call is a model step and a tool step
    message = f'call get_weather {calls} times with {{"city": "Paris"}}'
    async with private_temporal(state_dir, "bench") as temporal:
        settings, client = temporal.settings, temporal.client
        agent = AgentRegistry.load(settings.agents_file).get("agent_alpha")
        agent = agent.model_copy(update={"limits": AgentLimits(max_steps=args.steps + 5)})
        async with build_worker(client, settings):
            handle, _ = await start_conversation(client, settings, agent, message)
            result = await handle.result()
        steps = result.steps
        points = {"early": 10, "late": steps}
        print(f"source: {steps} steps, {len(result.stack)} stack entries", file=sys.stderr)
        unpolled = settings.model_copy(deep=True)
        unpolled.temporal.task_queue = "bench-branches-not-run"
        branches = Branches(ConversationClient(unpolled, client))
        times: dict[str, list[float]] = {name: [] for name in points}
        inputs: dict[str, int] = {}
        states: dict[str, int] = {}
        for n in range(args.repeats + 1):  # the first of each warms up
            order = list(points) if n % 2 == 0 else list(points)[::-1]
            for name in order:
                started = time.perf_counter()
                branch = await branches.start(handle.id, points[name], BranchChanges())
                if n:
                    times[name].append((time.perf_counter() - started) * 1000)
                inputs[name], states[name] = await _sizes(client, settings, branch.id)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, step in points.items():
        print(
            f"branch at step {step}: median {medians[name]:.0f} ms over {args.repeats}, "
            f"start input {inputs[name]} bytes, state stored {states[name] / 1024:.0f} KB"
        )
    time_ratio = medians["late"] / medians["early"]
    input_ratio = inputs["late"] / inputs["early"]
    print(f"late/early: time {time_ratio:.2f}, start input {input_ratio:.2f}")
    met = max(time_ratio, 1 / time_ratio, input_ratio, 1 / input_ratio) <= 2
    print(f"target within a factor of 2: {'met' if met else 'NOT met'}")
    return 0 if met else 1


async def _sizes(client: Client, settings: Settings, branch_id: str) -> tuple[int, int]:
    """The branch's start-input bytes as recorded, and the size of the state it names."""
    history = await client.get_workflow_handle(branch_id).fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    [inp] = await DATA_CONVERTER.decode([payload], [ConversationInput])
    assert inp.branch is not None
    async with store_for(settings) as store:
        state = await store.get_bytes(inp.branch.state_ref)
    return len(payload.data), len(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="the source's FSM steps")
    parser.add_argument("--repeats", type=int, default=5, help="branches at each point")
    args = parser.parse_args()
    if args.steps < 20:
        parser.error("--steps must be at least 20")
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        sys.exit(asyncio.run(bench(args, Path(state_dir))))


if __name__ == "__main__":
    main()
