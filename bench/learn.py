"""The learning loop's overhead: the wall time of a learning run against the same arms run
as plain rollouts, one after another, in one run on one dev server.

A run of config/learn/demo.yml (offline: the scripted model, judge and proposer) scores
its configs in child rollouts; the baseline replays each of those rollouts' inputs as a
rollout of its own, started from here, in the same order. What is left is the loop's own
cost: its workflow tasks, the proposals and the digests. The two take turns, `--rounds`
times, so drift falls on both; the last line is `learn/plain: R` (target: at most 1.10).

    python -m bench.learn [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from p2engine.contract.rollouts import RolloutInput
from p2engine.runtime.learning import LearnClient
from p2engine.runtime.rollouts import RolloutClient
from p2engine.runtime.settings import PROJECT_ROOT
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker

DEMO = PROJECT_ROOT / "config" / "learn" / "demo.yml"
TARGET = 1.10


async def learn_once(learning: LearnClient) -> tuple[float, list[str]]:
    """A learning run's wall time and the ids of the rollouts it scored with."""
    prepared = learning.prepare(DEMO)
    begun = time.perf_counter()
    handle = await learning.start(prepared.input, name=f"bench-{uuid.uuid4().hex[:8]}")
    result = await handle.result()
    wall = time.perf_counter() - begun
    rollouts = [r for g in result.generations for r in g.rollouts]
    base = [f"{result.learn_id}/g0-validation", *rollouts]
    return wall, base + ([result.test.rollout] if result.test else [])


async def plain(rollouts: RolloutClient, inputs: list[RolloutInput]) -> float:
    """The same rollouts started from here, one after another."""
    begun = time.perf_counter()
    for inp in inputs:
        handle = await rollouts.start(inp, name=f"bench-plain-{uuid.uuid4().hex[:8]}")
        await handle.result()
    return time.perf_counter() - begun


async def bench(args: argparse.Namespace, state_dir: Path) -> int:
    async with private_temporal(state_dir, "bench-learn") as temporal:
        settings, client = temporal.settings, temporal.client
        learning, rollouts = LearnClient(settings, client), RolloutClient(settings, client)
        async with build_worker(client, settings):
            ratios = []
            for round_ in range(1, args.rounds + 1):
                learned, ids = await learn_once(learning)
                inputs = [await rollouts.started_with(client.get_workflow_handle(i)) for i in ids]
                baseline = await plain(rollouts, inputs)
                ratios.append(learned / baseline)
                print(
                    f"round {round_}: learn {learned:.2f} s, the same {len(ids)} rollouts "
                    f"plain {baseline:.2f} s, learn/plain {learned / baseline:.2f}"
                )
    ratio = statistics.median(ratios)
    print(f"learn/plain: {ratio:.2f}  (target at most {TARGET:.2f})")
    return 0 if ratio <= TARGET else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2e-bench-learn-") as state_dir:
        sys.exit(asyncio.run(bench(args, Path(state_dir))))


if __name__ == "__main__":
    main()
