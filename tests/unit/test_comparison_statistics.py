"""The rollout comparison's statistics (evals/comparison.py) against hand-computed answers
and scipy's documented reference values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from p2engine.evals.comparison import (
    bootstrap_interval,
    cohens_d,
    holm,
    is_constant,
    mcnemar,
    paired,
    pareto_front,
    smallest_wilcoxon_p,
    t_interval,
    welch,
)


def test_the_t_interval_of_one_to_five() -> None:
    # mean 3, sd sqrt(2.5), se sqrt(0.5); t(0.975, 4) = 2.7764451
    interval = t_interval([1, 2, 3, 4, 5])
    assert (interval.mean, interval.n, interval.method) == (3.0, 5, "t")
    assert interval.low == pytest.approx(3 - 2.7764451 * 0.5**0.5, abs=1e-6)
    assert interval.high == pytest.approx(3 + 2.7764451 * 0.5**0.5, abs=1e-6)


def test_an_interval_from_one_value_has_no_bounds_and_from_equal_values_no_width() -> None:
    assert (t_interval([0.7]).low, t_interval([0.7]).high) == (None, None)
    assert (t_interval([0.5, 0.5]).low, t_interval([0.5, 0.5]).high) == (0.5, 0.5)
    with pytest.raises(ValueError):
        t_interval([])


def test_the_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [0.2, 0.4, 0.4, 0.6, 0.9, 1.0, 0.3, 0.5]
    first, again = bootstrap_interval(values, seed=1), bootstrap_interval(values, seed=1)
    assert first == again and first.method == "bootstrap"
    assert first.low is not None and first.high is not None
    assert first.low < first.mean < first.high
    # scipy's own percentile bootstrap of the mean lands on nearly the same bounds.
    reference = stats.bootstrap(
        (values,), np.mean, method="percentile", n_resamples=10_000, random_state=3
    ).confidence_interval
    assert first.low == pytest.approx(reference.low, abs=0.02)
    assert first.high == pytest.approx(reference.high, abs=0.02)
    constant = bootstrap_interval([0.5] * 6, seed=1)
    assert (constant.low, constant.high) == (0.5, 0.5)


def test_the_wilcoxon_p_value_is_scipys_documented_one() -> None:
    # scipy.stats.wilcoxon's own example: these differences give p = 0.041259765625.
    d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
    result = paired([0.0] * len(d), d, seed=0)
    assert result.p_value == pytest.approx(0.041259765625, rel=1e-9)
    assert result.n == 15 and result.difference.mean == pytest.approx(sum(d) / 15)


def test_paired_cases_that_never_differ_have_p_1_and_no_effect() -> None:
    same = paired([0.1, 0.5, 0.9], [0.1, 0.5, 0.9], seed=0)
    assert (same.p_value, same.effect_size, same.difference.mean) == (1.0, None, 0.0)
    with pytest.raises(ValueError, match="differ in number"):
        paired([1.0], [1.0, 2.0], seed=0)


def test_the_effect_size_of_paired_differences_is_their_mean_over_their_sd() -> None:
    result = paired([0, 0, 0, 0], [1, 2, 3, 4], seed=0)  # d: 1..4, mean 2.5, sd 1.2910
    assert result.effect_size == pytest.approx(2.5 / 1.2909944, rel=1e-6)


def test_mcnemar_counts_only_the_cases_one_of_them_passed() -> None:
    a = [True, True, False, False, False, False, False, True]
    b = [True, True, True, True, True, True, True, True]
    assert mcnemar(a, b) == pytest.approx(2 * 0.5**5)  # 5 discordant, all for B
    assert mcnemar([True, False], [True, False]) == 1.0


def test_holm_adjusts_in_order_and_stays_monotone() -> None:
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def test_cohens_d_uses_the_pooled_standard_deviation() -> None:
    # means 2 and 4, both variances 1: d = 2
    assert cohens_d([1, 2, 3], [3, 4, 5]) == pytest.approx(2.0)
    assert cohens_d([1], [2, 3]) is None and cohens_d([1, 1], [1, 1]) is None


def test_the_pareto_front_keeps_what_nothing_beats_on_cost_and_score() -> None:
    points = {"a": (1.0, 0.5), "b": (2.0, 0.7), "c": (2.0, 0.6), "d": (3.0, 0.7), "e": (0.5, 0.1)}
    assert pareto_front(points) == ["e", "a", "b"]


# --- degenerate inputs: one value, no spread, float noise ----------------------------------

SCORES = [0.7, 0.5, 0.9, 0.6, 0.8, 0.55]


def test_differences_that_are_float_noise_are_no_difference() -> None:
    result = paired([0.3] * 4, [0.1 + 0.2] * 4, seed=0)  # 0.30000000000000004
    assert (result.p_value, result.effect_size, result.difference.mean) == (1.0, None, 0.0)
    assert (result.difference.low, result.difference.high) == (0.0, 0.0)


def test_the_same_drop_in_every_pair_has_no_effect_size_and_scipys_p() -> None:
    # Each difference is -0.4 computed from other operands: a spread of ~1e-17, not zero,
    # which once made d_z about -7e15.
    dropped = [x - 0.4 for x in SCORES]
    assert np.std(np.subtract(dropped, SCORES), ddof=1) > 0
    result = paired(SCORES, dropped, seed=0)
    assert result.effect_size is None
    assert result.p_value == stats.wilcoxon([-0.4] * 6).pvalue == 0.03125
    assert result.difference.mean == pytest.approx(-0.4)
    assert result.difference.low == result.difference.high == pytest.approx(-0.4)


def test_one_pair_has_no_interval_no_effect_and_a_p_of_one() -> None:
    result = paired([0.2], [0.5], seed=0)
    assert (result.n, result.difference.low, result.difference.high) == (1, None, None)
    assert result.effect_size is None
    assert result.p_value == stats.wilcoxon([0.3]).pvalue == 1.0


def test_a_t_interval_of_values_equal_up_to_float_noise_has_no_width() -> None:
    interval = t_interval([0.1 + 0.2, 0.3, 0.3])
    assert interval.low == interval.high == interval.mean == pytest.approx(0.3)


def test_welch_without_spread_on_either_side() -> None:
    same = welch([0.3, 0.3], [0.1 + 0.2, 0.1 + 0.2])
    assert (same.p_value, same.effect_size, same.difference.mean) == (1.0, None, 0.0)
    apart = welch([0.2, 0.2], [0.6, 0.6])
    assert (apart.p_value, apart.effect_size) == (0.0, None)
    assert apart.difference.low == apart.difference.high == pytest.approx(0.4)


def test_welch_with_spread_is_scipys() -> None:
    a, b = [0.1, 0.4, 0.35, 0.8], [0.6, 0.9, 0.7, 0.75, 0.95]
    result = welch(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    low, high = reference.confidence_interval(0.95)
    assert result.difference.low == pytest.approx(low)
    assert result.difference.high == pytest.approx(high)


def test_cohens_d_of_two_constant_groups_is_undefined() -> None:
    assert cohens_d([0.3, 0.3, 0.3], [0.1 + 0.2, 0.3]) is None
    assert cohens_d([0.2, 0.2], [0.6, 0.6]) is None
    assert cohens_d([0.5], [0.1, 0.2]) is None


@pytest.mark.parametrize("n", [1, 2, 5, 6, 10])
def test_the_smallest_reachable_wilcoxon_p_is_scipys_for_n_pairs_of_one_sign(n: int) -> None:
    assert smallest_wilcoxon_p(n) == pytest.approx(stats.wilcoxon(np.arange(1.0, n + 1)).pvalue)


def test_no_pairs_reach_no_p_below_one_and_constants_are_recognised() -> None:
    assert smallest_wilcoxon_p(0) == 1.0
    assert is_constant([]) and is_constant([2.5]) and is_constant([0.1 + 0.2, 0.3])
    assert is_constant([1e-6, 1e-6 * (1 + 1e-12)])
    assert not is_constant([1e-6, 1.1e-6]) and not is_constant([0.0, 1e-3])
