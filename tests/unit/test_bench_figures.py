"""The figures the benchmarks print are right, on degenerate input too."""

from __future__ import annotations

import pytest

from bench.figures import paired_ratio, percentile


def test_a_paired_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # Round by round: 10/20, 30/20, 12/10 -> 0.5, 1.5, 1.2; the ratio of medians would be 0.6.
    assert paired_ratio([10.0, 30.0, 12.0], [20.0, 20.0, 10.0]) == pytest.approx(1.2)


def test_a_paired_ratio_of_one_round_or_equal_rates() -> None:
    assert paired_ratio([7.5], [15.0]) == 0.5
    assert paired_ratio([4.0, 4.0], [4.0, 4.0]) == 1.0
    assert paired_ratio([1.0, 3.0], [2.0, 2.0]) == 1.0  # an even count: the middle two's mean


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_percentile_by_nearest_rank() -> None:
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([5.0, 1.0, 2.0, 4.0, 3.0], 0.5) == 3.0
    assert percentile([1.0, 2.0], 0.95) == 2.0
    assert percentile([2.0, 2.0, 2.0], 0.0) == 2.0
