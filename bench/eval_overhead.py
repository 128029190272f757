"""What evaluating every step costs: 3-city conversations with the scripted model, without
evaluators and with rule-based ones scoring every FSM step (`within_tokens` on each model
step, `tool_succeeded` on each tool result), taking turns on one private dev server and
one in-process worker. A conversation's wall time runs from its start to its result.

    python -m bench.eval_overhead [--conversations N] [--evaluators ID[,ID]]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from p2engine.agents.tools.weather import WEATHER
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker

EVERY_STEP = "within_tokens,tool_succeeded"


async def bench(args: argparse.Namespace, state_dir: Path) -> None:
    message = f"What's the weather in {', '.join(list(WEATHER)[:3])}?"
    evaluators = [part for part in args.evaluators.split(",") if part]
    async with private_temporal(state_dir, "bench") as temporal:
        conversations = ConversationClient(temporal.settings, temporal.client)
        inputs = {
            "without": conversations.build_input("agent_alpha", message),
            "with": conversations.build_input("agent_alpha", message, evaluators=evaluators),
        }
        walls: dict[str, list[float]] = {name: [] for name in inputs}
        async with build_worker(temporal.client, temporal.settings):
            for n in range(args.conversations + 1):  # the first of each warms up
                order = list(inputs) if n % 2 == 0 else list(inputs)[::-1]
                for name in order:
                    started = time.perf_counter()
                    handle, _ = await conversations.start(inputs[name])
                    result = await handle.result()
                    if n:
                        walls[name].append((time.perf_counter() - started) * 1000)
                    if name == "with" and result.score is None:
                        sys.exit("the evaluated conversation has no score")
                print(f"\r{n}/{args.conversations}", end="", file=sys.stderr)
        print(file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in walls.items()}
    for name, values in walls.items():
        print(
            f"{name} evaluators: median {medians[name]:.1f} ms, "
            f"min {min(values):.1f} ms over {len(values)} conversations"
        )
    print(
        f"evaluated/plain wall time: {medians['with'] / medians['without']:.2f} ({args.evaluators})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=30, help="N of each (default 30)")
    parser.add_argument("--evaluators", default=EVERY_STEP, help=f"default {EVERY_STEP}")
    args = parser.parse_args()
    if args.conversations < 1:
        parser.error("--conversations must be >= 1")
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        asyncio.run(bench(args, Path(state_dir)))


if __name__ == "__main__":
    main()
