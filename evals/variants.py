"""A rollout's comparison: its arms' records summed up per variant and set against the
baseline with the statistics of evals/comparison.py.

What it reports, and why:
- per variant, the mean of the metric with a 95% Student's t interval (its `method`), and
  the success rate (arms that finished done and reached the pass score, of the arms run);
- against the baseline, arms on the same case and repeat are paired: the paired bootstrap
  interval of the differences, the Wilcoxon signed-rank p-value, Cohen's d_z, and the exact
  McNemar test on pass/fail. Variants on other cases than the baseline's are compared
  unpaired, with Welch's t. The p-values are Holm-corrected across the variants, and a
  difference is significant only below 0.05 after the correction. When the pairs are too
  few for the signed-rank test to reach 0.05 at all, a note says so and how many would;
- a metric with a range (a score in 0..1, counts and costs from 0) keeps its intervals
  inside it, and a note says when one was clipped;
- the variants no other one beats on both mean cost and mean score (the Pareto front);
- the best mean, unless several variants share it: a tie has no best, and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from p2engine.contract.rollouts import (
    METRICS,
    AgainstBaseline,
    ArmRecord,
    Estimate,
    VariantComparison,
    VariantStats,
)
from p2engine.evals.comparison import (
    Interval,
    holm,
    mcnemar,
    paired,
    pareto_front,
    smallest_wilcoxon_p,
    t_interval,
    welch,
)

SIGNIFICANCE = 0.05
# What a metric's values can be: its interval bounds stay inside. None: unbounded that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "score": (0.0, 1.0),
    "reward": (None, None),
    "net_flow": (None, None),
}
NON_NEGATIVE = (0.0, None)  # tokens, cost, latency, steps, tool calls, transactions
RAN = ("done", "failed")  # arms that ran; skipped and cancelled ones have no figures
ERRORS_KEPT = 5


def resolve_baseline(records: Sequence[ArmRecord], baseline: str | None) -> str | None:
    """`team/variant` for a baseline given as that or as a variant id one team has."""
    if baseline is None:
        return None
    keys = list(dict.fromkeys(r.variant_key for r in records))
    matches = [k for k in keys if baseline in (k, k.partition("/")[2])]
    return matches[0] if len(matches) == 1 else None


def compare(
    records: Sequence[ArmRecord], metric: str, baseline: str | None, seed: int
) -> VariantComparison:
    """The comparison of the variants in `records`, in the order of their arms' keys as
    the file lists them (records come in the order arms finished)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}'; metrics: {', '.join(METRICS)}")
    groups: dict[str, list[ArmRecord]] = {}
    for record in sorted(records, key=lambda r: (r.order, r.case, r.repeat)):
        groups.setdefault(record.variant_key, []).append(record)
    base_key = resolve_baseline(records, baseline)
    notes = [
        f"{metric}: mean with a 95% Student's t interval; arms that never got a value "
        "(skipped, cancelled, or failed before scoring) are left out of it"
    ]
    if baseline is not None and base_key is None:
        notes.append(f"baseline '{baseline}' names no variant of these arms")
    stats = [_variant(group, metric) for group in groups.values()]
    if base_key is not None:
        _against(stats, groups, base_key, metric, seed, notes)
    notes += _clip_to_range(stats, metric)
    notes += _shared_wallets(records)
    best, tied = best_mean(stats, higher=METRICS[metric])
    if len(tied) == len(stats) > 1:
        notes.append(f"no best: all {len(tied)} variants have the same mean")
    elif len(tied) > 1:
        notes.append(f"no best: {len(tied)} variants share the best mean ({', '.join(tied)})")
    points = {s.key: (s.cost_usd, score) for s, score in _score_means(stats, groups)}
    return VariantComparison(
        metric=metric,
        baseline=base_key,
        seed=seed,
        variants=stats,
        best=best,
        pareto=pareto_front(points),
        notes=notes,
    )


def best_mean(stats: Sequence[VariantStats], higher: bool) -> tuple[str | None, list[str]]:
    """The variant with the best mean metric, and the keys of all that share it (to within
    float noise): a tie has no best, since marking the first of equals would rank them."""
    means = {s.key: s.metric.mean for s in stats if s.metric is not None}
    if not means:
        return None, []
    top = (max if higher else min)(means.values())
    tied = [
        key for key, mean in means.items() if math.isclose(mean, top, rel_tol=1e-9, abs_tol=1e-12)
    ]
    return (tied[0] if len(tied) == 1 else None), tied


def estimate_of(interval: Interval) -> Estimate:
    return Estimate(
        mean=interval.mean,
        low=interval.low,
        high=interval.high,
        n=interval.n,
        method=interval.method,
    )


def _values(records: Sequence[ArmRecord], metric: str) -> list[float]:
    ran = (r.value(metric) for r in records if r.status in RAN)
    return [v for v in ran if v is not None]


def _variant(records: list[ArmRecord], metric: str) -> VariantStats:
    ran = [r for r in records if r.status in RAN]
    values = _values(records, metric)
    count = len(ran) or 1
    errors = list(dict.fromkeys(r.error for r in records if r.status == "failed" and r.error))
    return VariantStats(
        team=records[0].team,
        variant=records[0].variant,
        arms=len(records),
        done=sum(r.status == "done" for r in records),
        failed=sum(r.status == "failed" for r in records),
        skipped=sum(r.status == "skipped" for r in records),
        cancelled=sum(r.status == "cancelled" for r in records),
        success_rate=sum(r.passed for r in ran) / count,
        metric=estimate_of(t_interval(values)) if values else None,
        tokens=sum(r.tokens for r in ran) / count,
        cost_usd=sum(r.cost_usd for r in ran) / count,
        latency_s=sum(r.latency_s for r in ran) / count,
        transactions=sum(r.transactions for r in records),
        net_flow=sum((r.net_flow for r in records), Decimal(0)),
        reward=sum((r.reward for r in records), Decimal(0)),
        errors=[e for e in errors if e][:ERRORS_KEPT],
    )


def _pairs(
    base: list[ArmRecord], other: list[ArmRecord], metric: str
) -> list[tuple[ArmRecord, ArmRecord]] | None:
    """The arms of `other` matched with the baseline's on the same case and repeat, or None
    when the two ran on different cases (their messages differ)."""
    by_place = {(r.case, r.repeat): r for r in base if r.status in RAN}
    if {(r.case, r.case_id) for r in base} != {(r.case, r.case_id) for r in other}:
        return None
    matched = []
    for record in (r for r in other if r.status in RAN):
        twin = by_place.get((record.case, record.repeat))
        if twin is not None and record.value(metric) is not None and twin.value(metric) is not None:
            matched.append((twin, record))
    return matched


def _against(
    stats: list[VariantStats],
    groups: dict[str, list[ArmRecord]],
    base_key: str,
    metric: str,
    seed: int,
    notes: list[str],
) -> None:
    """Fill in each variant's `versus`, with Holm's correction across all of them."""
    base = groups[base_key]
    p_values: dict[str, float] = {}
    mcnemar_values: dict[str, float] = {}
    for s in stats:
        if s.key == base_key:
            continue
        pairs = _pairs(base, groups[s.key], metric)
        if pairs is not None:
            versus = AgainstBaseline(paired=True, n=len(pairs))
            if pairs:
                result = paired(
                    [a.value(metric) or 0.0 for a, _ in pairs],
                    [b.value(metric) or 0.0 for _, b in pairs],
                    seed,
                )
                versus.difference = estimate_of(result.difference)
                versus.test, versus.p_value = "wilcoxon", result.p_value
                versus.effect_size = result.effect_size
                versus.mcnemar_p = mcnemar(
                    [a.passed for a, _ in pairs], [b.passed for _, b in pairs]
                )
                mcnemar_values[s.key] = versus.mcnemar_p
        else:
            a, b = _values(base, metric), _values(groups[s.key], metric)
            versus = AgainstBaseline(paired=False, n=len(a) + len(b))
            notes.append(f"{s.key} ran on other cases than the baseline: compared unpaired")
            if len(a) >= 2 and len(b) >= 2:
                result_u = welch(a, b)
                versus.difference = estimate_of(result_u.difference)
                versus.test, versus.p_value = "welch", result_u.p_value
                versus.effect_size = result_u.effect_size
        if versus.p_value is not None:
            p_values[s.key] = versus.p_value
        s.versus = versus
    adjusted, adjusted_mcnemar = holm(p_values), holm(mcnemar_values)
    for s in stats:
        if s.versus is None:
            continue
        s.versus.p_holm = adjusted.get(s.key)
        s.versus.mcnemar_holm = adjusted_mcnemar.get(s.key)
        s.versus.significant = s.versus.p_holm is not None and s.versus.p_holm < SIGNIFICANCE
        if s.versus.test == "wilcoxon":
            reachable = min(1.0, len(p_values) * smallest_wilcoxon_p(s.versus.n))
            s.versus.reachable_p = reachable
            if s.versus.underpowered:
                notes.append(_too_few_pairs(s.key, s.versus.n, len(p_values), reachable))


def _score_means(
    stats: list[VariantStats], groups: dict[str, list[ArmRecord]]
) -> list[tuple[VariantStats, float]]:
    found = []
    for s in stats:
        scores = _values(groups[s.key], "score")
        if scores:
            found.append((s, sum(scores) / len(scores)))
    return found


def _shared_wallets(records: Sequence[ArmRecord]) -> list[str]:
    """Say which agents' wallets several variants share: their balances mix, so the
    comparison's money figures are each arm's own transfers, never balances."""
    variants_of: dict[str, set[str]] = {}
    for record in records:
        variants_of.setdefault(record.agent_id, set()).add(record.variant_key)
    return [
        f"the variants of {agent} ({len(keys)}) share its wallet: transactions and net flow "
        "count each arm's own transfers (by reference), not balances"
        for agent, keys in sorted(variants_of.items())
        if len(keys) > 1
    ]


def pairs_needed(comparisons: int) -> int:
    """The fewest pairs, all differing one way, with which the signed-rank test can reach
    0.05 after Holm over `comparisons`: the n with comparisons * 2 / 2**n below 0.05."""
    n = 1
    while comparisons * smallest_wilcoxon_p(n) >= SIGNIFICANCE:
        n += 1
    return n


def _too_few_pairs(key: str, n: int, comparisons: int, reachable: float) -> str:
    against = f" after Holm over {comparisons} variants" if comparisons > 1 else ""
    return (
        f"{key}: {n} pair{'' if n == 1 else 's'} cannot reach p < {SIGNIFICANCE} with the "
        f"signed-rank test{against}"
        f" (the smallest possible p is {reachable:.3g}): it needs at least "
        f"{pairs_needed(comparisons)} (more cases or --repeats)"
    )


def within_range(e: Estimate, metric: str) -> Estimate:
    """`e` with its interval kept inside what the metric's values can be."""
    low_end, high_end = RANGES.get(metric, NON_NEGATIVE)
    if e.low is None or e.high is None:
        return e
    low = e.low if low_end is None else max(e.low, low_end)
    high = e.high if high_end is None else min(e.high, high_end)
    return e.model_copy(update={"low": low, "high": high})


def _clip_to_range(stats: list[VariantStats], metric: str) -> list[str]:
    """Keep each variant's interval inside what the metric's values can be (a t interval
    from few values can reach beyond it); say which were clipped."""
    low_end, high_end = RANGES.get(metric, NON_NEGATIVE)
    clipped = []
    for s in stats:
        if s.metric is not None and (inside := within_range(s.metric, metric)) != s.metric:
            s.metric = inside
            clipped.append(s.key)
    if not clipped:
        return []
    span = f"[{low_end:g}, {high_end:g}]" if high_end is not None else f"{low_end:g} and above"
    return [f"{metric} intervals clipped to its range {span}: {', '.join(clipped)} (few values)"]
