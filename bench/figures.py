"""The figures the benchmarks print, as pure functions."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0 to 1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median over rounds of one round's ratio of rates: the two rounds of a pair ran
    side by side in time, so a machine that slowed down for a while slowed both."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
