"""A learning run's curve, drawn: a PNG (matplotlib, the `plot` extra) or a Rerun
recording. Per generation, the parent's score on its train minibatch and its proposal's on
the validation tasks, each with its 95% interval, and the best validation score so far."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from p2engine.contract.errors import InvalidInput, ProvisioningError
from p2engine.contract.learning import LearnResult
from p2engine.contract.rollouts import Estimate

if TYPE_CHECKING:
    from p2engine.runtime.rerun_view import RerunTarget


def curve(result: LearnResult) -> dict[str, list[tuple[int, Estimate]]]:
    """The series to draw: generation -> estimate, for train, validation and best so far."""
    train = [(g.number, g.train) for g in result.generations if g.train is not None]
    validation = [(g.number, g.validation) for g in result.generations if g.validation]
    start = [(0, result.baseline_validation)] if result.baseline_validation else []
    best: list[tuple[int, Estimate]] = []
    for number in [0, *(g.number for g in result.generations)]:
        scored = [e for n, e in [*start, *validation] if n <= number]
        if scored:
            best.append((number, max(scored, key=lambda e: e.mean)))
    return {"train": train, "validation": [*start, *validation], "best validation": best}


def plot(result: LearnResult, path: Path) -> None:
    """Write the curve as a PNG at `path`."""
    if path.suffix.lower() != ".png":
        raise InvalidInput(f"--plot writes a PNG: name a FILE.png, not {path}")
    if not path.parent.is_dir():
        raise InvalidInput(f"--plot: there is no directory {path.parent}")
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: a file only
        import matplotlib.pyplot as plt
    except ImportError:
        raise ProvisioningError("--plot needs matplotlib: pip install 'p2engine[plot]'") from None
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(8, 4.5))
    styles = {"train": "o-", "validation": "s", "best validation": "--"}
    for name, points in curve(result).items():
        if not points:
            continue
        xs = [n for n, _ in points]
        axes.plot(xs, [e.mean for _, e in points], styles[name], label=name)
        low = [e.low if e.low is not None else e.mean for _, e in points]
        high = [e.high if e.high is not None else e.mean for _, e in points]
        axes.fill_between(xs, low, high, alpha=0.15)
    axes.set_xlabel("generation (0: the baseline)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("score (95% intervals shaded)")
    axes.set_ylim(-0.05, 1.05)
    axes.set_title(f"{result.learn_id}: {result.verdict}", fontsize=9)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


async def record(result: LearnResult, target: RerunTarget, say: Callable[[str], None]) -> None:
    """Log the curve to Rerun on the `generation` timeline, one series per line and bound."""
    import rerun as rr
    import rerun.blueprint as rrb

    from p2engine.runtime.rerun_view import Recording, entity, open_sinks

    root = entity("learn", result.learn_id)
    blueprint = rrb.Blueprint(rrb.TimeSeriesView(origin=root, name="learning curve"))
    recording = Recording(open_sinks(target), result.learn_id, blueprint)
    for place in recording.places():
        say(f"rerun: {place}")
    for name, points in curve(result).items():
        series = f"{root}/{name.replace(' ', '_')}"
        recording.name_series(series, name)
        for number, estimate in points:
            recording.log(series, rr.Scalars(estimate.mean), at={"generation": number})
            if estimate.low is not None and estimate.high is not None:
                for bound, value in (("low", estimate.low), ("high", estimate.high)):
                    recording.log(f"{series}/{bound}", rr.Scalars(value), at={"generation": number})
    await recording.end(say)
