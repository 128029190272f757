"""The statistics a rollout's comparison reports: per variant a mean with its 95% interval,
against the baseline paired differences, their p-values corrected across variants, effect
sizes, and the variants no other beats on both cost and score.

Plain functions of lists of numbers (numpy and scipy underneath), so each is tested
against hand-computed cases and scipy's own references; the rollout runs them in an
activity, so what they found is recorded with the rollout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
# Two values this close, relative to their size, are the same value computed two ways
# (0.1 + 0.2 against 0.3): float noise, never a difference to test or a spread to divide by.
RELATIVE_TOLERANCE = 1e-9


def is_constant(values: Sequence[float] | np.ndarray) -> bool:
    """Whether every value is the same, up to float noise."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return True
    return bool(np.ptp(data) <= RELATIVE_TOLERANCE * np.max(np.abs(data)))


def differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """b - a, pair by pair, with differences that are float noise set to exactly 0."""
    left, right = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    found = right - left
    noise = np.abs(found) <= RELATIVE_TOLERANCE * np.maximum(np.abs(left), np.abs(right))
    found[noise] = 0.0
    # Equal differences computed two ways tie, as they should in the signed-rank test.
    return np.array([float(f"{d:.12g}") for d in found], dtype=float)


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give for `n` nonzero
    differences (all of one sign): 2 / 2**n. Below n = 6 it is above 0.05, so no result,
    however clear, can be significant."""
    return min(1.0, 2.0 / 2.0**n) if n > 0 else 1.0


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval; no bounds from fewer than two values."""

    mean: float
    low: float | None
    high: float | None
    n: int
    method: Literal["t", "bootstrap"]


@dataclass(frozen=True)
class Paired:
    """B against A on the same cases: the mean of B - A with its interval, the Wilcoxon
    signed-rank p-value, and the effect size (the mean difference in standard deviations
    of the differences, Cohen's d_z)."""

    n: int
    difference: Interval
    p_value: float | None
    effect_size: float | None


@dataclass(frozen=True)
class Unpaired:
    """B against A on different cases: the difference of the means with its interval, the
    p-value and the effect size (Cohen's d)."""

    difference: Interval
    p_value: float
    effect_size: float | None


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student's t interval of the mean."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = float(np.mean(values))
    if n < 2:
        return Interval(mean, None, None, n, "t")
    if is_constant(values):
        return Interval(mean, mean, mean, n, "t")
    sem = float(stats.sem(values))
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, "t")


def bootstrap_interval(
    values: Sequence[float], seed: int, confidence: float = CONFIDENCE, resamples: int = RESAMPLES
) -> Interval:
    """The percentile bootstrap interval of the mean, from `resamples` draws seeded by
    `seed`: the same values and seed always give the same interval."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if n < 2:
        return Interval(mean, None, None, n, "bootstrap")
    draws = np.random.default_rng(seed).choice(data, size=(resamples, n), replace=True)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws.mean(axis=1), [tail, 100 - tail])
    return Interval(mean, float(low), float(high), n, "bootstrap")


def paired(a: Sequence[float], b: Sequence[float], seed: int) -> Paired:
    """B against A, case by case (a[i] and b[i] ran on the same input and seed)."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in number: {len(a)} and {len(b)}")
    found = differences(a, b)
    interval = bootstrap_interval(found.tolist(), seed)
    p_value: float | None = None
    if np.any(found != 0):
        p_value = float(stats.wilcoxon(found, zero_method="wilcox").pvalue)
    elif len(found):
        p_value = 1.0  # no case differs
    # d_z needs a spread: with every difference the same (or one pair) it is undefined.
    effect = None
    if len(found) > 1 and not is_constant(found):
        effect = float(found.mean() / np.std(found, ddof=1))
    return Paired(len(found), interval, p_value, effect)


def welch(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Unpaired:
    """B against A on different cases: the difference of the means with Welch's t interval
    and p-value (no equal variances assumed), and Cohen's d."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each side needs at least two values")
    mean = float(np.mean(b) - np.mean(a))
    if is_constant(a) and is_constant(b):  # no spread: the difference is what it is
        same = differences([a[0]], [b[0]])[0] == 0
        mean = 0.0 if same else mean
        return Unpaired(
            Interval(mean, mean, mean, len(a) + len(b), "t"), 1.0 if same else 0.0, None
        )
    test = stats.ttest_ind(b, a, equal_var=False)
    low, high = test.confidence_interval(confidence)
    interval = Interval(mean, float(low), float(high), len(a) + len(b), "t")
    return Unpaired(interval, float(test.pvalue), cohens_d(a, b))


def mcnemar(a_passed: Sequence[bool], b_passed: Sequence[bool]) -> float:
    """The exact McNemar p-value for pass/fail results on the same cases: the binomial
    test of the cases only one of them passed."""
    if len(a_passed) != len(b_passed):
        raise ValueError("paired results differ in number")
    only_a = sum(1 for x, y in zip(a_passed, b_passed, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a_passed, b_passed, strict=True) if y and not x)
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values: the k-th smallest of m times (m - k + 1), never
    less than the one before, never above 1."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for k, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - k) * p))
        adjusted[name] = running
    return adjusted


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float | None:
    """(mean of B - mean of A) over their pooled standard deviation; None when it is 0."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    if is_constant(a) and is_constant(b):
        return None
    pooled = ((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2)
    return float((np.mean(b) - np.mean(a)) / math.sqrt(pooled))


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """The names whose (cost, score) no other point beats: as cheap or cheaper and as good
    or better, and strictly one of the two. In order of cost."""
    front = [
        name
        for name, (cost, score) in points.items()
        if not any(
            (c <= cost and s >= score) and (c < cost or s > score)
            for other, (c, s) in points.items()
            if other != name
        )
    ]
    return sorted(front, key=lambda name: (points[name][0], -points[name][1], name))
