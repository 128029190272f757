"""A rollout's comparison (evals/variants.py): its arms' records summed up per variant and
set against the baseline, checked against scipy and hand-computed Holm corrections; and
its money per arm from the ledger's journal (ledger/flows.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from p2engine.contract.rollouts import (
    ArmRecord,
    ArmStatus,
    VariantComparison,
    VariantStats,
    case_id,
)
from p2engine.evals.variants import compare, pairs_needed, resolve_baseline
from p2engine.ledger.flows import Flow, arm_entries, flow
from p2engine.ledger.models import EntryKind, JournalEntry


def rec(
    variant: str,
    score: float | None = None,
    *,
    order: int = 0,
    case: int = 0,
    repeat: int = 0,
    team: str = "t",
    message: str | None = None,
    status: ArmStatus = "done",
    passed: bool | None = None,
    cost: float = 0.0,
    tokens: tuple[int, int] = (0, 0),
    latency: float = 0.0,
    agent_id: str = "agent_alpha",
    error: str | None = None,
    transactions: int = 0,
    net_flow: str = "0",
    reward: str = "0",
) -> ArmRecord:
    """One arm's record; its message is `case <n>` unless given, and it passed when it was
    done with a score of 0.5 or more unless told."""
    if passed is None:
        passed = status == "done" and score is not None and score >= 0.5
    label = f"c{case}-r{repeat}"
    return ArmRecord(
        key=f"{team}/{variant}/{label}",
        team=team,
        variant=variant,
        case=case,
        repeat=repeat,
        order=order,
        case_id=case_id(message if message is not None else f"case {case}"),
        agent_id=agent_id,
        workflow_id=f"ro/{team}/{variant}/{label}",
        status=status,
        error=error,
        score=score,
        passed=passed,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=cost,
        latency_s=latency,
        transactions=transactions,
        net_flow=Decimal(net_flow),
        reward=Decimal(reward),
    )


def series(
    variant: str, scores: list[float], order: int, cases: int = 1, **kw: object
) -> list[ArmRecord]:
    """One record per score: case by case, then repeat by repeat."""
    return [
        rec(variant, s, order=order, case=n % cases, repeat=n // cases, **kw)  # type: ignore[arg-type]
        for n, s in enumerate(scores)
    ]


def by_key(comparison: VariantComparison) -> dict[str, VariantStats]:
    return {s.key: s for s in comparison.variants}


def holm_by_hand(p: dict[str, float]) -> dict[str, float]:
    """Holm for a few p-values written out: sorted ascending, the k-th (from 0) times
    m - k, each at least the one before, at most 1."""
    names = sorted(p, key=p.__getitem__)
    m = len(names)
    out: dict[str, float] = {}
    previous = 0.0
    for k, name in enumerate(names):
        previous = max(previous, min(1.0, (m - k) * p[name]))
        out[name] = previous
    return out


BASE = [0.30, 0.42, 0.51, 0.27, 0.60, 0.35, 0.48, 0.55]
UP = [0.05, 0.11, 0.02, 0.20, 0.08, 0.14, 0.17, -0.03]  # differences from BASE
MIXED = [0.04, -0.06, 0.01, -0.09, 0.12, -0.02, 0.07, -0.10]


# --- against the baseline --------------------------------------------------------------------


def test_paired_arms_are_compared_by_wilcoxon_with_holm_across_the_variants() -> None:
    up = [b + d for b, d in zip(BASE, UP, strict=True)]
    mixed = [b + d for b, d in zip(BASE, MIXED, strict=True)]
    records = [
        *series("base", BASE, 0, cases=2),
        *series("up", up, 1, cases=2),
        *series("mixed", mixed, 2, cases=2),
    ]
    random.Random(4).shuffle(records)  # they come in the order the arms finished
    comparison = compare(records, "score", "t/base", seed=1)
    stats_of = by_key(comparison)
    assert comparison.baseline == "t/base"
    assert stats_of["t/base"].versus is None

    raw = {
        "t/up": float(stats.wilcoxon(np.subtract(up, BASE)).pvalue),
        "t/mixed": float(stats.wilcoxon(np.subtract(mixed, BASE)).pvalue),
    }
    adjusted = holm_by_hand(raw)
    for key, values in (("t/up", up), ("t/mixed", mixed)):
        versus = stats_of[key].versus
        assert versus is not None
        differences = np.subtract(values, BASE)
        assert (versus.paired, versus.test, versus.n) == (True, "wilcoxon", 8)
        assert versus.p_value == pytest.approx(raw[key], rel=1e-9)
        assert versus.p_holm == pytest.approx(adjusted[key], rel=1e-9)
        assert versus.difference is not None
        assert versus.difference.mean == pytest.approx(differences.mean())
        assert versus.difference.method == "bootstrap"
        assert versus.effect_size == pytest.approx(differences.mean() / differences.std(ddof=1))
    # The correction made a difference here: the smaller p was doubled.
    smaller = min(raw, key=raw.__getitem__)
    versus = stats_of[smaller].versus
    assert versus is not None and versus.p_holm == pytest.approx(2 * raw[smaller])


def test_paired_arms_are_matched_on_case_and_repeat_not_on_arrival() -> None:
    # The variant is the baseline plus 1/8 on every arm: matched by place, every difference
    # is 1/8; matched by position in the list they came in, they would not be. (Binary
    # fractions, so that the differences are exactly equal.)
    scores = [0.125, 0.75, 0.375, 0.625, 0.25, 0.5]
    base = series("base", scores, 0, cases=3)
    plus = series("plus", [s + 0.125 for s in scores], 1, cases=3)
    comparison = compare([*base, *reversed(plus)], "score", "base", seed=0)
    versus = by_key(comparison)["t/plus"].versus
    assert versus is not None and versus.difference is not None
    assert versus.paired and versus.n == 6
    assert versus.difference.mean == 0.125
    assert versus.effect_size is None  # the differences do not vary


def test_significant_only_when_the_holm_corrected_p_is_below_005() -> None:
    # Six positive differences: the exact two-sided Wilcoxon p is 2 / 2**6 = 0.03125.
    base = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    a = [b + d for b, d in zip(base, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06], strict=True)]
    b = [x + d for x, d in zip(base, [0.06, 0.05, 0.04, 0.03, 0.02, 0.07], strict=True)]
    assert stats.wilcoxon(np.subtract(a, base)).pvalue == pytest.approx(2 / 2**6)

    alone = compare([*series("base", base, 0), *series("a", a, 1)], "score", "base", seed=0)
    versus = by_key(alone)["t/a"].versus
    assert versus is not None
    assert versus.p_value == pytest.approx(0.03125)
    assert versus.p_holm == pytest.approx(0.03125)
    assert versus.significant is True

    both = compare(
        [*series("base", base, 0), *series("a", a, 1), *series("b", b, 2)], "score", "base", 0
    )
    for key in ("t/a", "t/b"):
        versus = by_key(both)[key].versus
        assert versus is not None
        assert versus.p_value == pytest.approx(0.03125)  # below 0.05 on its own ...
        assert versus.p_holm == pytest.approx(2 * 0.03125)  # ... not once corrected for two
        assert versus.significant is False


def test_variants_on_other_messages_are_compared_unpaired_by_welch() -> None:
    a = [0.2, 0.4, 0.5, 0.3, 0.6]
    b = [0.7, 0.9, 0.65, 0.8]
    records = [
        *series("base", a, 0, message="Tell me a joke."),
        *series("memo", b, 1, message="Write a serious memo."),
    ]
    comparison = compare(records, "score", "base", seed=0)
    versus = by_key(comparison)["t/memo"].versus
    assert versus is not None and versus.difference is not None
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert (versus.paired, versus.test, versus.n) == (False, "welch", 9)
    assert versus.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    assert versus.p_holm == pytest.approx(float(reference.pvalue), rel=1e-9)  # one variant
    low, high = reference.confidence_interval(0.95)
    assert versus.difference.mean == pytest.approx(np.mean(b) - np.mean(a))
    assert versus.difference.low == pytest.approx(float(low))
    assert versus.difference.high == pytest.approx(float(high))
    pooled = (4 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 7
    assert versus.effect_size == pytest.approx((np.mean(b) - np.mean(a)) / np.sqrt(pooled))
    assert versus.mcnemar_p is None  # pass/fail is only tested in pairs
    assert "t/memo ran on other cases than the baseline: compared unpaired" in comparison.notes


def test_holm_spans_paired_and_unpaired_variants_alike() -> None:
    base = [0.30, 0.42, 0.51, 0.27, 0.60, 0.35, 0.48, 0.55]
    up = [x + d for x, d in zip(base, UP, strict=True)]
    other = [0.9, 0.8, 0.85, 0.95, 0.7]
    records = [
        *series("base", base, 0),
        *series("up", up, 1),
        *series("other", other, 2, message="another message"),
    ]
    stats_of = by_key(compare(records, "score", "base", seed=0))
    raw = {
        "t/up": float(stats.wilcoxon(np.subtract(up, base)).pvalue),
        "t/other": float(stats.ttest_ind(other, base, equal_var=False).pvalue),
    }
    adjusted = holm_by_hand(raw)
    for key in raw:
        versus = stats_of[key].versus
        assert versus is not None
        assert versus.p_holm == pytest.approx(adjusted[key], rel=1e-9)
    assert stats_of["t/up"].versus is not None and stats_of["t/up"].versus.paired
    assert stats_of["t/other"].versus is not None and not stats_of["t/other"].versus.paired


def test_mcnemar_tests_pass_and_fail_on_the_pairs_holm_corrected() -> None:
    scores = [0.5] * 10  # the metric is beside the point: pass/fail is set per arm
    base_pass = [True, True, True, False, False, False, False, False, False, True]
    a_pass = [True, False, True, True, True, True, True, True, False, True]  # +5 -1
    b_pass = [True, True, True, True, True, True, False, False, False, True]  # +3 -0
    records = [
        rec(name, score, order=order, repeat=n, passed=p)
        for order, (name, passes) in enumerate((("base", base_pass), ("a", a_pass), ("b", b_pass)))
        for n, (score, p) in enumerate(zip(scores, passes, strict=True))
    ]
    stats_of = by_key(compare(records, "score", "base", seed=0))
    # Exact binomial on the discordant pairs: a wins 5 of 6, b wins 3 of 3.
    p_a = 2 * (1 + 6) / 2**6  # P(X >= 5 | n=6), both tails
    p_b = 2 * 1 / 2**3
    assert p_a == pytest.approx(stats.binomtest(5, 6, 0.5).pvalue)
    versus_a, versus_b = stats_of["t/a"].versus, stats_of["t/b"].versus
    assert versus_a is not None and versus_b is not None
    assert versus_a.mcnemar_p == pytest.approx(p_a)
    assert versus_b.mcnemar_p == pytest.approx(p_b)
    # Holm by hand: 0.21875 * 2 = 0.4375 first, then max(0.4375, 0.25 * 1) = 0.4375.
    assert versus_a.mcnemar_holm == pytest.approx(0.4375)
    assert versus_b.mcnemar_holm == pytest.approx(0.4375)
    # No case differs on the metric: the Wilcoxon test has nothing to find.
    assert (versus_a.p_value, versus_a.significant) == (1.0, False)


def test_a_paired_comparison_leaves_out_arms_that_never_ran() -> None:
    # The variant ran out of budget: two of its arms were skipped, with no cost spent. The
    # comparison's note says arms that never got a value are left out; on cost they have a
    # 0.0 all the same, and must not pair with the baseline's arms as if they had cost nothing.
    base_cost = [0.010, 0.012, 0.011, 0.013, 0.009, 0.014]
    ran_cost = [0.020, 0.021, 0.019, 0.022]
    records = [
        *(rec("base", 0.5, order=0, repeat=n, cost=c) for n, c in enumerate(base_cost)),
        *(rec("dear", 0.5, order=1, repeat=n, cost=c) for n, c in enumerate(ran_cost)),
        rec("dear", order=1, repeat=4, status="skipped", error="the budget is spent"),
        rec("dear", order=1, repeat=5, status="cancelled", error="the rollout was cancelled"),
    ]
    comparison = compare(records, "cost_usd", "base", seed=0)
    dear = by_key(comparison)["t/dear"]
    assert dear.metric is not None and dear.metric.n == 4  # per variant: left out, rightly
    versus = dear.versus
    assert versus is not None and versus.difference is not None
    differences = np.subtract(ran_cost, base_cost[:4])
    assert versus.n == 4
    assert versus.difference.mean == pytest.approx(differences.mean())
    assert versus.difference.mean > 0  # the variant costs more, not less


# --- per variant -----------------------------------------------------------------------------


def test_arms_that_did_not_run_count_as_arms_but_give_no_value() -> None:
    records = [
        rec("a", 0.6, repeat=0, tokens=(100, 20), cost=0.01, latency=2.0),
        rec("a", 0.8, repeat=1, tokens=(110, 30), cost=0.02, latency=3.0),
        rec("a", 1.0, repeat=2, tokens=(90, 10), cost=0.03, latency=4.0, passed=False),
        rec("a", None, repeat=3, status="failed", error="timeout", cost=0.04, latency=9.0),
        rec("a", None, repeat=4, status="skipped", error="the budget is spent"),
        rec("a", None, repeat=5, status="cancelled", error="never started"),
    ]
    comparison = compare(records, "score", None, seed=0)
    stats_a = comparison.variants[0]
    assert (stats_a.arms, stats_a.done, stats_a.failed) == (6, 3, 1)
    assert (stats_a.skipped, stats_a.cancelled) == (1, 1)
    assert stats_a.metric is not None
    assert (stats_a.metric.n, stats_a.metric.method) == (3, "t")
    assert stats_a.metric.mean == pytest.approx(0.8)
    low, high = stats.t.interval(0.95, 2, loc=0.8, scale=stats.sem([0.6, 0.8, 1.0]))
    assert stats_a.metric.low == pytest.approx(low)
    assert high > 1.29 and stats_a.metric.high == 1.0  # a score's interval stays in 0..1
    assert "score intervals clipped to its range [0, 1]: t/a (few values)" in comparison.notes
    # Means per arm that ran (done or failed): 4 of them.
    assert stats_a.tokens == pytest.approx((120 + 140 + 100 + 0) / 4)
    assert stats_a.cost_usd == pytest.approx((0.01 + 0.02 + 0.03 + 0.04) / 4)
    assert stats_a.latency_s == pytest.approx((2 + 3 + 4 + 9) / 4)


def test_on_cost_the_arms_never_run_are_left_out_of_the_values_too() -> None:
    records = [
        rec("a", 0.5, repeat=0, cost=0.02),
        rec("a", None, repeat=1, status="failed", cost=0.04),
        rec("a", None, repeat=2, status="skipped"),
        rec("a", None, repeat=3, status="cancelled"),
    ]
    metric = compare(records, "cost_usd", None, seed=0).variants[0].metric
    assert metric is not None
    assert metric.n == 2 and metric.mean == pytest.approx(0.03)


def test_a_failed_arm_that_scored_before_failing_counts_in_the_score() -> None:
    # As the comparison's first note says: only arms that never got a value are left out.
    records = [rec("a", 0.9, repeat=0), rec("a", 0.3, repeat=1, status="failed")]
    comparison = compare(records, "score", None, seed=0)
    metric = comparison.variants[0].metric
    assert metric is not None and metric.n == 2 and metric.mean == pytest.approx(0.6)
    assert "are left out of it" in comparison.notes[0]


def test_the_success_rate_is_the_passed_of_the_arms_that_ran() -> None:
    records = [
        rec("a", 0.9, repeat=0, passed=True),
        rec("a", 0.8, repeat=1, passed=True),
        rec("a", 0.2, repeat=2, passed=False),
        rec("a", 0.7, repeat=3, status="failed", passed=False),
        rec("a", None, repeat=4, status="failed"),
        rec("a", None, repeat=5, status="skipped"),
        rec("a", None, repeat=6, status="cancelled"),
        rec("b", None, repeat=0, status="skipped"),
    ]
    a, b = compare(records, "score", None, seed=0).variants
    assert a.success_rate == pytest.approx(2 / 5)  # done 3 + failed 2 ran; 2 passed
    assert (b.success_rate, b.metric, b.tokens, b.cost_usd) == (0.0, None, 0.0, 0.0)


def test_money_and_transactions_add_up_over_every_arm() -> None:
    records = [
        rec("a", 0.5, repeat=0, transactions=2, net_flow="1.50", reward="0.20"),
        rec("a", 0.5, repeat=1, transactions=1, net_flow="-0.75", reward="0.10"),
        rec("a", None, repeat=2, status="failed", transactions=3, net_flow="2.00"),
    ]
    a = compare(records, "net_flow", None, seed=0).variants[0]
    assert (a.transactions, a.net_flow, a.reward) == (6, Decimal("2.75"), Decimal("0.30"))
    assert a.metric is not None and a.metric.mean == pytest.approx((1.5 - 0.75 + 2.0) / 3)


def test_the_errors_of_failed_arms_are_kept_once_each_and_at_most_five() -> None:
    errors = ["e1", "e2", "e1", "e3", "e4", "e5", "e6", "e2"]
    records = [rec("a", None, repeat=n, status="failed", error=e) for n, e in enumerate(errors)] + [
        rec("a", None, repeat=9, status="skipped", error="the budget is spent")
    ]
    a = compare(list(reversed(records)), "score", None, seed=0).variants[0]
    assert a.errors == ["e1", "e2", "e3", "e4", "e5"]


def test_variants_are_listed_in_file_order_whatever_order_their_arms_finished() -> None:
    records = [
        *series("zeta", [0.1, 0.2], 0),
        *series("alpha", [0.3, 0.4], 1),
        *series("mid", [0.5, 0.6], 3, team="u"),
        *series("beta", [0.7, 0.8], 2),
    ]
    for seed in range(5):
        random.Random(seed).shuffle(records)
        comparison = compare(records, "score", None, seed=0)
        assert [s.key for s in comparison.variants] == ["t/zeta", "t/alpha", "t/beta", "u/mid"]


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric 'vibes'"):
        compare([rec("a", 0.5)], "vibes", None, seed=0)


# --- best, Pareto, baseline, notes -----------------------------------------------------------


def three_variants() -> list[ArmRecord]:
    # mean score / mean cost: a 0.5 / 0.02, b 0.8 / 0.05, c 0.6 / 0.01
    return [
        *series("a", [0.4, 0.6], 0, cost=0.02),
        *series("b", [0.7, 0.9], 1, cost=0.05),
        *series("c", [0.5, 0.7], 2, cost=0.01),
        rec("d", None, order=3, status="skipped"),  # no value: never best
    ]


def test_the_best_has_the_highest_mean_score() -> None:
    assert compare(three_variants(), "score", None, seed=0).best == "t/b"


def test_the_best_has_the_lowest_mean_cost() -> None:
    assert compare(three_variants(), "cost_usd", None, seed=0).best == "t/c"


def test_a_tie_for_the_best_mean_has_no_best_and_a_note_naming_the_tied() -> None:
    # 0.1 + 0.2 and 0.3 differ in the last bit: a tie all the same.
    records = [*series("a", [0.1 + 0.2, 0.5], 0), *series("b", [0.3, 0.5], 1)]
    records += series("c", [0.2, 0.2], 2)
    found = compare(records, "score", None, seed=0)
    assert found.best is None
    assert "no best: 2 variants share the best mean (t/a, t/b)" in found.notes


def test_variants_that_all_tie_are_said_to_without_naming_each() -> None:
    records = [*series("a", [0.5, 0.5], 0), *series("b", [0.5, 0.5], 1)]
    found = compare(records, "cost_usd", None, seed=0)
    assert found.best is None
    assert "no best: all 2 variants have the same mean" in found.notes


def test_one_variant_ahead_of_a_tie_below_it_is_the_best() -> None:
    records = [*series("a", [0.3, 0.3], 0), *series("b", [0.3, 0.3], 1)]
    found = compare([*records, *series("c", [0.4, 0.4], 2)], "score", None, seed=0)
    assert found.best == "t/c"
    assert not [n for n in found.notes if n.startswith("no best")]


def test_no_best_when_no_variant_has_a_value() -> None:
    assert compare([rec("a", None, status="skipped")], "score", None, seed=0).best is None


def test_the_pareto_front_keeps_the_variants_nothing_beats_on_cost_and_score() -> None:
    records = [
        *series("a", [0.4, 0.6], 0, cost=0.01),  # 0.01, 0.5
        *series("b", [0.6, 0.8], 1, cost=0.02),  # 0.02, 0.7
        *series("c", [0.5, 0.7], 2, cost=0.03),  # 0.03, 0.6: b is cheaper and better
        *series("d", [0.1, 0.3], 3, cost=0.005),  # 0.005, 0.2
        *series("e", [0.3, 0.5], 4, cost=0.01),  # 0.01, 0.4: a is as cheap and better
    ]
    # On (cost, score), whatever metric is ranked; in order of cost.
    assert compare(records, "latency_s", None, seed=0).pareto == ["t/d", "t/a", "t/b"]


def test_a_baseline_given_as_a_bare_variant_id_resolves_to_team_and_variant() -> None:
    records = [*series("base", [0.1, 0.2], 0), *series("up", [0.3, 0.5], 1)]
    records += series("other", [0.1, 0.2], 2, team="u")
    assert resolve_baseline(records, "base") == "t/base"
    assert resolve_baseline(records, "t/base") == "t/base"
    assert resolve_baseline(records, "u/base") is None
    assert resolve_baseline(records, None) is None
    comparison = compare(records, "score", "base", seed=0)
    assert comparison.baseline == "t/base"
    assert by_key(comparison)["t/up"].versus is not None


def test_a_bare_variant_id_in_two_teams_resolves_to_none() -> None:
    records = [*series("a", [0.1], 0), *series("a", [0.2], 1, team="u")]
    assert resolve_baseline(records, "a") is None
    assert resolve_baseline(records, "u/a") == "u/a"


def test_an_unknown_baseline_is_noted_and_nothing_is_compared_against_it() -> None:
    records = [*series("a", [0.1, 0.2], 0), *series("b", [0.3, 0.5], 1)]
    comparison = compare(records, "score", "nope", seed=0)
    assert comparison.baseline is None
    assert "baseline 'nope' names no variant of these arms" in comparison.notes
    assert all(s.versus is None for s in comparison.variants)
    assert all("baseline" not in n for n in compare(records, "score", None, seed=0).notes)


def test_variants_sharing_an_agent_are_told_to_share_its_wallet() -> None:
    records = [
        *series("a", [0.1], 0, agent_id="agent_alpha"),
        *series("b", [0.2], 1, agent_id="agent_alpha"),
        *series("c", [0.3], 2, agent_id="agent_alpha", team="u"),
        *series("d", [0.4], 3, agent_id="agent_beta"),
    ]
    notes = compare(records, "score", None, seed=0).notes
    shared = [n for n in notes if "share its wallet" in n]
    assert shared == [
        "the variants of agent_alpha (3) share its wallet: transactions and net flow count "
        "each arm's own transfers (by reference), not balances"
    ]


def test_variants_with_agents_of_their_own_get_no_wallet_note() -> None:
    records = [
        *series("a", [0.1, 0.2], 0, agent_id="agent_alpha"),
        *series("b", [0.2, 0.3], 1, agent_id="agent_beta"),
    ]
    assert not any("wallet" in n for n in compare(records, "score", None, seed=0).notes)


# --- the ledger's money, arm by arm ---------------------------------------------------------

AT = datetime(2025, 1, 1, tzinfo=UTC)


def journal(
    seq: int,
    reference: str,
    payer: str | None = "agent_alpha",
    payee: str = "agent_beta",
    amount: str = "1.00",
    kind: EntryKind = "transfer",
) -> JournalEntry:
    return JournalEntry(
        seq=seq,
        at=AT,
        kind=kind,
        transfer_id=None if kind == "open" else f"tx-{seq}",
        payer=payer,
        payee=payee,
        amount=Decimal(amount),
        reference=reference,
    )


ENTRIES = [
    journal(1, "ro/t/a/r0", payer=None, payee="agent_alpha", amount="100.00", kind="open"),
    journal(2, "ro/t/a/r0", "agent_alpha", "agent_beta", "3.00"),
    journal(3, "ro/t/a/r0/d3-agent_beta", "treasury", "agent_alpha", "1.50", "reward"),
    journal(4, "ro/t/a/r0/d3-agent_beta/d4-agent_gamma", "agent_beta", "agent_alpha", "0.75"),
    journal(5, "ro/t/a/c1-r0", "agent_alpha", "agent_beta", "2.00"),
    journal(6, "ro/u/b/r0", "agent_beta", "agent_alpha", "4.00"),
    journal(7, "ro-2/t/a/r0", "agent_alpha", "agent_beta", "9.00"),
    journal(8, "other/ro/t/a/r0", "agent_alpha", "agent_beta", "9.00"),
    journal(9, "ro", "agent_alpha", "agent_beta", "9.00"),
    journal(10, "", "agent_alpha", "agent_beta", "9.00"),
]


def test_an_arms_entries_are_its_own_and_its_childrens() -> None:
    found = arm_entries(ENTRIES, "ro")
    assert {key: [e.seq for e in entries] for key, entries in found.items()} == {
        "t/a/r0": [2, 3, 4],
        "t/a/c1-r0": [5],
        "u/b/r0": [6],
    }


def test_other_rollouts_references_and_wallet_openings_are_left_out() -> None:
    kept = {e.seq for entries in arm_entries(ENTRIES, "ro").values() for e in entries}
    assert kept.isdisjoint({1, 7, 8, 9, 10})
    assert {k: [e.seq for e in v] for k, v in arm_entries(ENTRIES, "ro-2").items()} == {
        "t/a/r0": [7]
    }
    assert arm_entries(ENTRIES, "nothing") == {}


def test_an_arms_net_flow_is_what_came_into_its_agents_wallet_less_what_left() -> None:
    arm = arm_entries(ENTRIES, "ro")["t/a/r0"]
    # agent_alpha: -3.00 paid, +1.50 reward, +0.75 back from the grandchild
    assert flow(arm, "agent_alpha") == Flow(3, Decimal("-0.75"))
    # agent_beta: +3.00 in, -0.75 out
    assert flow(arm, "agent_beta") == Flow(3, Decimal("2.25"))
    assert flow(arm, "agent_delta") == Flow(3, Decimal(0))  # counted, moved nothing of its
    assert flow([], "agent_alpha") == Flow(0, Decimal(0))


def _drop_in_every_pair(repeats: int, variants: int) -> list[ArmRecord]:
    """A baseline `base` and `variants` others, each 0.4 below it in every pair."""
    scores = [0.9, 0.8, 0.7, 0.85, 0.75, 0.95, 0.65, 0.6, 0.72, 0.88]
    found = []
    for r in range(repeats):
        found.append(rec("base", scores[r], repeat=r))
        for v in range(variants):
            found.append(rec(f"v{v}", scores[r] - 0.4, order=v + 1, repeat=r))
    return found


def test_too_few_pairs_for_the_test_are_said_to_be_too_few_with_how_many_would_do() -> None:
    # The demo's shape: 5 pairs, 3 variants against the baseline: the smallest two-sided
    # signed-rank p is 2/32 = 0.0625, and 0.1875 after Holm: never significant.
    comparison = compare(_drop_in_every_pair(5, 3), "score", "base", seed=0)
    v0 = comparison.variants[1]
    assert v0.versus is not None
    assert v0.versus.p_holm == pytest.approx(0.1875) and not v0.versus.significant
    assert v0.versus.reachable_p == pytest.approx(0.1875) and v0.versus.underpowered
    assert v0.versus.effect_size is None  # the same drop everywhere: no spread
    assert (
        "t/v0: 5 pairs cannot reach p < 0.05 with the signed-rank test after Holm over 3 "
        "variants (the smallest possible p is 0.188): it needs at least 7 (more cases or "
        "--repeats)"
    ) in comparison.notes
    assert pairs_needed(3) == 7 and pairs_needed(1) == 6


def test_enough_pairs_can_reach_significance_and_no_note_says_otherwise() -> None:
    comparison = compare(_drop_in_every_pair(7, 3), "score", "base", seed=0)
    for v in comparison.variants[1:]:
        assert v.versus is not None
        assert v.versus.p_holm == pytest.approx(3 * 2 / 2**7) and v.versus.significant
        assert not v.versus.underpowered
    assert not [n for n in comparison.notes if "cannot reach" in n]


def test_an_interval_of_a_count_never_goes_below_zero() -> None:
    records = [rec("a", 0.5, repeat=r, tokens=(t, 0)) for r, t in enumerate([0, 0, 30])]
    comparison = compare(records, "tokens", None, seed=0)
    tokens = comparison.variants[0].metric
    assert tokens is not None and tokens.low == 0.0 and tokens.high is not None
    assert tokens.high > 30
    assert "tokens intervals clipped to its range 0 and above: t/a (few values)" in (
        comparison.notes
    )
