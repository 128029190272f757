"""History size of a long conversation: content travels by reference, so Temporal history
grows with the number of steps, not with the size of the transcript.

A 100-step scripted conversation in which every message is about 2 KB: the user message,
each tool call's arguments and each tool result. The figure is the recorded history's size
as the server reports it; the target is under 5 MB. For comparison the script also prints
what passing the whole transcript into every model step would have added.

    python -m bench.history_size [--steps N] [--message-kb K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from p2engine.agents.registry import AgentRegistry
from p2engine.agents.tools import tool
from p2engine.contract.agent import AgentLimits
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker

TARGET_BYTES = 5 * 1024 * 1024


class EchoArgs(BaseModel):
    text: str


@tool("bench_echo", "Return the text it is given.", EchoArgs, side_effect_free=True)
def bench_echo(args: EchoArgs) -> dict[str, str]:
    return {"echo": args.text}


def filler(n_bytes: int) -> str:
    words = "the quick brown fox jumps over the lazy dog and keeps on running "
    return (words * (n_bytes // len(words) + 1))[:n_bytes]


async def bench(args: argparse.Namespace, state_dir: Path) -> int:
    calls = args.steps // 2  # each call is a model step and a tool step
    size = args.message_kb * 1024
    arguments = json.dumps({"text": filler(size)})
    message = f"call bench_echo {calls} times with {arguments}"
    async with private_temporal(state_dir, "bench") as temporal:
        settings, client = temporal.settings, temporal.client
        agent = AgentRegistry.load(settings.agents_file).get("agent_alpha")
        agent = agent.model_copy(
            update={"tools": ["bench_echo"], "limits": AgentLimits(max_steps=args.steps + 5)}
        )
        async with build_worker(client, settings):
            started = time.perf_counter()
            handle, _ = await start_conversation(client, settings, agent, message)
            result = await handle.result()
            elapsed = time.perf_counter() - started
            description = await handle.describe()
            history = await handle.fetch_history()
    info = description.raw_description.workflow_execution_info
    history_bytes = info.history_size_bytes
    transcript = len(message) + calls * 2 * (size + 200)  # user message, calls and results
    # Passing the transcript into model step k would add the first k messages to history.
    quadratic = sum(len(message) + k * 2 * (size + 200) for k in range(calls + 1))
    print(f"conversation: {result.steps} steps, reason {result.reason}, {elapsed:.1f} s")
    print(f"messages: ~{size} bytes each, transcript ~{transcript / 1024:.0f} KB")
    print(f"history: {history_bytes / 1024:.0f} KB in {len(history.events)} events")
    print(f"  per step: {history_bytes / max(1, result.steps) / 1024:.1f} KB")
    print(f"transcript passed into every model step instead: ~{quadratic / 1024**2:.1f} MB")
    verdict = "met" if history_bytes < TARGET_BYTES else "NOT met"
    print(f"target < {TARGET_BYTES / 1024**2:.0f} MB: {verdict}")
    return 0 if history_bytes < TARGET_BYTES else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="FSM steps (model + tool)")
    parser.add_argument("--message-kb", type=int, default=2, help="size of each message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        sys.exit(asyncio.run(bench(args, Path(state_dir))))


if __name__ == "__main__":
    main()
