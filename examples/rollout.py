"""Run a small rollout from Python and print how its variants compare.

    .venv/bin/python examples/rollout.py [--repeats N]

The rollout is examples/rollout.yml: the front desk with and without its tools, on two
questions, scored by the offline `helpful` judge. A worker runs in this process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from p2engine import RolloutClient, VariantComparison, load_settings, run_script, running_worker

ROLLOUT_FILE = Path(__file__).with_name("rollout.yml")


async def main(repeats: int | None) -> None:
    settings = load_settings()
    rollouts = RolloutClient(settings)
    prepared = rollouts.prepare(ROLLOUT_FILE, repeats=repeats)  # checked before it connects
    async with running_worker(settings, await rollouts.temporal()):
        handle = await rollouts.start(prepared.input)
        print(f"started {handle.id}: {len(prepared.file.arms)} arms")
        result = await rollouts.result(handle)
    print(f"{result.rollout_id}: {result.phase}")
    print_comparison(result.comparison)


def print_comparison(comparison: VariantComparison) -> None:
    print(f"{comparison.metric} by variant, against {comparison.baseline or 'no baseline'}:")
    for v in comparison.variants:
        mean = f"{v.metric.mean:.3f} (n={v.metric.n})" if v.metric else "no scores"
        line = f"  {v.key:<26} done {v.done}/{v.arms}  {comparison.metric} {mean}"
        if v.versus is not None and v.versus.difference is not None:
            p = f"{v.versus.p_holm:.3f}" if v.versus.p_holm is not None else "-"
            line += f"  difference {v.versus.difference.mean:+.3f} (Holm p {p})"
        print(line)
    if comparison.best:
        print(f"best: {comparison.best}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="runs per variant and question")
    run_script(main(parser.parse_args().repeats))
