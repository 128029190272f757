"""FSM step overhead: conversations with the zero-latency scripted model on a private dev server.

A conversation asks for the weather in K cities, so it runs 2K+1 FSM steps (model, tool,
model, ..., model). A step's time is measured in the recorded history, from the scheduling
of its activity to the scheduling of the next one (or to the workflow's completion): the
Temporal round trips plus the real litellm code path, with no model latency on top.

The throughput phase runs several rounds and prints the median and the minimum, so that a
single slow round shows instead of hiding in one figure.

    python -m bench.step_overhead [--conversations N] [--cities K] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from agents.registry import AgentRegistry
from agents.tools.weather import WEATHER
from contract.agent import AgentSpec
from contract.models import ConversationResult
from runtime.client import connect
from runtime.conversations import start_conversation
from runtime.settings import Settings, TemporalSettings
from runtime.temporal_server import private_dev_server
from runtime.worker import build_worker


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def step_times_ms(handle: WorkflowHandle[object, ConversationResult]) -> list[float]:
    history = await handle.fetch_history()
    marks = [
        event.event_time.ToMicroseconds() / 1000
        for event in history.events
        if event.event_type
        in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        )
    ]
    return [later - earlier for earlier, later in itertools.pairwise(marks)]


async def one(
    client: Client, settings: Settings, agent: AgentSpec, message: str
) -> WorkflowHandle[object, ConversationResult]:
    handle, _ = await start_conversation(client, settings, agent, message)
    await handle.result()
    return handle


async def bench(args: argparse.Namespace, state_dir: Path) -> None:
    cities = ", ".join(list(WEATHER)[: args.cities])
    message = f"What's the weather in {cities}?"
    with private_dev_server(state_dir) as server:
        settings = Settings(
            state_dir=state_dir,
            temporal=TemporalSettings(address=server.config.address, task_queue="bench"),
        )
        agent = AgentRegistry.load(settings.agents_file).get("agent_alpha")
        agent = agent.model_copy(update={"limits": {"max_steps": 2 * args.cities + 5}})
        client = await connect(settings)
        async with build_worker(client, settings):
            await one(client, settings, agent, message)  # warm-up: imports, caches, sticky queue

            steps: list[float] = []
            for n in range(args.conversations):
                handle = await one(client, settings, agent, message)
                steps += await step_times_ms(handle)
                print(f"\rsequential {n + 1}/{args.conversations}", end="", file=sys.stderr)
            print(file=sys.stderr)

            semaphore = asyncio.Semaphore(args.concurrency)

            async def limited() -> None:
                async with semaphore:
                    await one(client, settings, agent, message)

            rates: list[float] = []
            for round_number in range(args.rounds):
                started = time.perf_counter()
                await asyncio.gather(*(limited() for _ in range(args.conversations)))
                rates.append(args.conversations / (time.perf_counter() - started))
                print(
                    f"throughput round {round_number + 1}/{args.rounds}: "
                    f"{rates[-1]:.1f} conversations/s",
                    file=sys.stderr,
                )

    per_conversation = 2 * args.cities + 1
    print(f"FSM steps per conversation: {per_conversation} ({args.cities} tool calls)")
    print(
        f"step overhead over {len(steps)} steps ({args.conversations} sequential conversations): "
        f"median {statistics.median(steps):.1f} ms, p95 {percentile(steps, 0.95):.1f} ms, "
        f"max {max(steps):.1f} ms"
    )
    median_rate = statistics.median(rates)
    print(
        f"throughput over {args.rounds} rounds of {args.conversations} conversations: "
        f"median {median_rate:.1f} conversations/s ({median_rate * per_conversation:.0f} steps/s), "
        f"min {min(rates):.1f} conversations/s, "
        f"at concurrency {args.concurrency}, one in-process worker"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=30, help="N (default 30)")
    parser.add_argument("--cities", type=int, default=3, help="tool calls per conversation")
    parser.add_argument("--concurrency", type=int, default=10, help="for the throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (default 3)")
    args = parser.parse_args()
    if min(args.conversations, args.concurrency, args.rounds) < 1:
        parser.error("--conversations, --concurrency and --rounds must be >= 1")
    if not 1 <= args.cities <= len(WEATHER):
        parser.error(f"--cities must be 1..{len(WEATHER)}")
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        asyncio.run(bench(args, Path(state_dir)))


if __name__ == "__main__":
    main()
