"""FSM step overhead: conversations with the zero-latency scripted model on a private dev server,
beside the floor: a workflow of the same shape whose activities do nothing (bench/floor.py),
and the peer: the same conversation as an OpenAI Agents SDK agent on Temporal with a fake
model served through its plugin (bench/peer_oai.py).

A conversation asks for the weather in K cities, so it runs 2K+1 FSM steps (model, tool,
model, ..., model). A step's time is a conversation's time in its recorded history, from
its start to its completion, over those FSM steps (a quick tool call runs inside a workflow
task, with no activity of its own to time): the Temporal round trips plus the real litellm
code path, with no model latency on top. The median is over conversations.

Ours, the floor and the peer share the server and the worker process and take turns,
conversation by conversation and round by round, so noise on the machine hits both. The
throughput phase runs several rounds and prints the median and the minimum, so that a
single slow round shows instead of hiding in one figure. Two lines hold the ratios to the
floor and to the peer: `step/floor: R  throughput/floor: R` and `step/oai: R  throughput/oai: R`.
A throughput ratio is the median over rounds of the two contenders' rates in the same
round: their rounds run back to back, so a machine that slows down for a while slows both
halves of a pair, where a ratio of the two medians could pair a fast round with a slow one.

With --tracing a third contender takes its turns too: the same conversations on a worker of
the same process that traces them (file exporter); the last line is its ratio to ours.

    python -m bench.step_overhead [--conversations N] [--cities K] [--concurrency C] [--rounds R]
        [--tracing]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from bench.figures import paired_ratio, percentile
from bench.floor import FloorInput, StepFloor, floor_worker
from bench.peer_oai import WeatherAgent, peer_client, peer_worker
from p2engine.agents.registry import AgentRegistry
from p2engine.agents.tools.weather import WEATHER
from p2engine.contract.agent import AgentLimits
from p2engine.runtime.catalog import load_catalog
from p2engine.runtime.client import connect
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.settings import TelemetrySettings
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker

Run = Callable[[], Awaitable[WorkflowHandle[Any, Any]]]


async def step_ms(handle: WorkflowHandle[Any, Any], fsm_steps: int) -> float:
    """A conversation's time per FSM step: from its start to its completion in the recorded
    history, over the FSM steps it ran. Per FSM step, not per activity: a quick tool call
    that runs inside a workflow task has no activity of its own to time."""
    events = (await handle.fetch_history()).events
    started, completed = (
        next(e for e in events if e.event_type == kind).event_time.ToMicroseconds() / 1000
        for kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        )
    )
    return (completed - started) / fsm_steps


async def history_bytes(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """Bytes (the sum of each event's protobuf ByteSize) and events of a recorded history."""
    events = (await handle.fetch_history()).events
    return sum(event.ByteSize() for event in events), len(events)


def in_turn(runs: dict[str, Run], n: int) -> list[tuple[str, Run]]:
    """A turn's order rotates, so that no contender always goes first."""
    order = list(runs.items())
    shift = n % len(order)
    return order[shift:] + order[:shift]


async def bench(args: argparse.Namespace, state_dir: Path) -> None:
    cities = ", ".join(list(WEATHER)[: args.cities])
    per_conversation = 2 * args.cities + 1  # FSM steps: model, tool, model, ..., model
    message = f"What's the weather in {cities}?"
    async with private_temporal(state_dir, "bench") as temporal:
        settings, client = temporal.settings, temporal.client
        agent = AgentRegistry.load(settings.agents_file).get("agent_alpha")
        agent = agent.model_copy(update={"limits": AgentLimits(max_steps=2 * args.cities + 5)})
        floor_input = FloorInput(
            cities=args.cities, tool=load_catalog(settings).tool("get_weather")
        )
        floor_queue = f"{settings.temporal.task_queue}-floor"

        # Built once and started many times, as a rollout starts its arms: the benchmark's
        # client shares the worker's process, so rebuilding the catalog per start would
        # count the client's work as the worker's.
        conversations = ConversationClient(settings, client)
        start_input = conversations.build_input(agent, message)

        async def ours() -> WorkflowHandle[Any, Any]:
            handle, _ = await conversations.start(start_input)
            await handle.result()
            return handle

        async def floor() -> WorkflowHandle[Any, Any]:
            handle = await client.start_workflow(
                StepFloor.run, floor_input, id=f"floor-{uuid.uuid4().hex}", task_queue=floor_queue
            )
            await handle.result()
            return handle

        peer_queue = f"{settings.temporal.task_queue}-oai"
        peer = await peer_client(settings.temporal.address or "", settings.temporal.namespace)

        async def oai() -> WorkflowHandle[Any, Any]:
            handle = await peer.start_workflow(
                WeatherAgent.run, message, id=f"oai-{uuid.uuid4().hex}", task_queue=peer_queue
            )
            await handle.result()
            return handle

        runs: dict[str, Run] = {"ours": ours, "floor": floor, "oai": oai}
        async with AsyncExitStack() as workers:
            await workers.enter_async_context(build_worker(client, settings))
            await workers.enter_async_context(floor_worker(client, floor_queue))
            await workers.enter_async_context(peer_worker(peer, peer_queue))
            if args.tracing:
                traced_settings = settings.model_copy(
                    update={
                        "temporal": settings.temporal.model_copy(
                            update={"task_queue": f"{settings.temporal.task_queue}-traced"}
                        ),
                        "telemetry": TelemetrySettings(exporter="file"),
                    }
                )
                traced_client = await connect(traced_settings)
                await workers.enter_async_context(build_worker(traced_client, traced_settings))
                traced_conversations = ConversationClient(traced_settings, traced_client)

                async def traced() -> WorkflowHandle[Any, Any]:
                    handle, _ = await traced_conversations.start(start_input)
                    await handle.result()
                    return handle

                runs["traced"] = traced
            sizes = {name: await history_bytes(await run()) for name, run in runs.items()}
            # That first run of each was also the warm-up: imports, caches, sticky queues.

            steps: dict[str, list[float]] = {name: [] for name in runs}
            for n in range(args.conversations):
                for name, run in in_turn(runs, n):
                    steps[name].append(await step_ms(await run(), per_conversation))
                print(f"\rsequential {n + 1}/{args.conversations}", end="", file=sys.stderr)
            print(file=sys.stderr)

            semaphore = asyncio.Semaphore(args.concurrency)

            async def limited(run: Run) -> None:
                async with semaphore:
                    await run()

            rates: dict[str, list[float]] = {name: [] for name in runs}
            for round_number in range(args.rounds):
                for name, run in in_turn(runs, round_number):
                    started = time.perf_counter()
                    await asyncio.gather(*(limited(run) for _ in range(args.conversations)))
                    rates[name].append(args.conversations / (time.perf_counter() - started))
                    print(
                        f"throughput round {round_number + 1}/{args.rounds} ({name}): "
                        f"{rates[name][-1]:.1f} conversations/s",
                        file=sys.stderr,
                    )

    print(f"FSM steps per conversation: {per_conversation} ({args.cities} tool calls)")
    for name in runs:
        median_rate = statistics.median(rates[name])
        print(
            f"{name}: step (a conversation's time over its FSM steps) in {len(steps[name])} "
            f"sequential conversations: median {statistics.median(steps[name]):.1f} ms, "
            f"p95 {percentile(steps[name], 0.95):.1f} ms, max {max(steps[name]):.1f} ms"
        )
        print(
            f"{name}: throughput over {args.rounds} rounds of {args.conversations} conversations: "
            f"median {median_rate:.1f} conversations/s ({median_rate * per_conversation:.0f} "
            f"steps/s), min {min(rates[name]):.1f} conversations/s, "
            f"at concurrency {args.concurrency}, one in-process worker"
        )
        size, events = sizes[name]
        print(
            f"{name}: history of one {args.cities}-city conversation: {size:,} bytes in "
            f"{events} events (sum of each event's protobuf ByteSize)"
        )
    step_ratio = statistics.median(steps["ours"]) / statistics.median(steps["floor"])
    rate_ratio = paired_ratio(rates["ours"], rates["floor"])
    print(f"step/floor: {step_ratio:.2f}  throughput/floor: {rate_ratio:.2f}")
    step_ratio = statistics.median(steps["ours"]) / statistics.median(steps["oai"])
    rate_ratio = paired_ratio(rates["ours"], rates["oai"])
    print(f"step/oai: {step_ratio:.2f}  throughput/oai: {rate_ratio:.2f}")
    if "traced" in runs:
        step_ratio = statistics.median(steps["traced"]) / statistics.median(steps["ours"])
        rate_ratio = paired_ratio(rates["traced"], rates["ours"])
        print(f"traced/ours: step {step_ratio:.2f}  throughput {rate_ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=30, help="N (default 30)")
    parser.add_argument("--cities", type=int, default=3, help="tool calls per conversation")
    parser.add_argument("--concurrency", type=int, default=10, help="for the throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (default 5)")
    parser.add_argument(
        "--tracing", action="store_true", help="also run ours traced, and print the ratio"
    )
    args = parser.parse_args()
    if min(args.conversations, args.concurrency, args.rounds) < 1:
        parser.error("--conversations, --concurrency and --rounds must be >= 1")
    if not 1 <= args.cities <= len(WEATHER):
        parser.error(f"--cities must be 1..{len(WEATHER)}")
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        asyncio.run(bench(args, Path(state_dir)))


if __name__ == "__main__":
    main()
