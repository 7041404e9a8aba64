"""mean and median_ci95 of every distribution (metrics.md, revision 2026-12-02)."""

from __future__ import annotations

import pandas as pd

from devmetrics.metrics.stats import as_distribution, distribution, median_ci_rank


def exact_rank(n: int) -> int:
    """l by the revision's rule in integer arithmetic: the largest k with
    sum_{i <= k-1} C(n, i) / 2^n <= 1/40, i.e. 40 * sum <= 2^n; 0 when there is none."""
    term, below, k = 1, 0, 0  # term = C(n, k), below = sum_{i < k} C(n, i)
    while 40 * (below + term) <= 2**n:
        below += term
        term = term * (n - k) // (k + 1)
        k += 1
    return k


def test_the_contracts_worked_examples() -> None:
    # n = 5: P(B <= 0) = 1/32 = 0.03125 > 0.025, so no k >= 1 exists: no interval
    assert median_ci_rank(5) == 0
    # n = 6: P(B <= 0) = 1/64 = 0.0156 <= 0.025 < P(B <= 1) = (1 + 6)/64 = 0.109, so l = 1
    assert median_ci_rank(6) == 1
    # n = 10: P(B <= 1) = (1 + 10)/1024 = 11/1024 = 0.0107 <= 0.025
    #         < P(B <= 2) = (1 + 10 + 45)/1024 = 56/1024 = 0.0547, so l = 2
    assert median_ci_rank(10) == 2


def test_the_rank_agrees_with_exact_integer_arithmetic() -> None:
    for n in range(1, 401):
        assert median_ci_rank(n) == exact_rank(n), n


def test_distribution_gains_mean_and_median_ci95_per_group() -> None:
    six = [5.0, 1.0, 4.0, 2.0, 6.0, 3.0]  # sorted 1..6
    ten = [70.0, 10.0, 100.0, 40.0, 20.0, 90.0, 30.0, 60.0, 50.0, 80.0]  # sorted 10, 20, ..., 100
    five = [1.0, 2.0, 3.0, 4.0, 5.0]
    values = pd.Series([*six, *ten, *five, None])
    keys = pd.Series(["six"] * 6 + ["ten"] * 10 + ["five"] * 5 + ["six"])  # the None is no value
    table = distribution(values, keys)
    # n = 6, l = 1: [x(1), x(6)] = [1, 6]; mean 21 / 6 = 3.5; median (3 + 4) / 2 = 3.5;
    # p90 at rank 0.9 * 5 = 4.5 -> 5 + 0.5 * (6 - 5) = 5.5
    assert as_distribution(table.loc["six"]) == {
        "median": 3.5, "p90": 5.5, "mean": 3.5, "median_ci95": [1.0, 6.0], "n": 6
    }
    # n = 10, l = 2: [x(2), x(9)] = [20, 90]; mean 550 / 10 = 55; median (50 + 60) / 2 = 55;
    # p90 at rank 0.9 * 9 = 8.1 -> 90 + 0.1 * (100 - 90) = 91
    ten_row = as_distribution(table.loc["ten"])
    assert ten_row["median_ci95"] == [20.0, 90.0]
    assert ten_row["mean"] == 55.0 and ten_row["median"] == 55.0 and ten_row["n"] == 10
    # n = 5: no interval, the mean still is (1 + 2 + 3 + 4 + 5) / 5 = 3
    assert as_distribution(table.loc["five"])["median_ci95"] is None
    assert as_distribution(table.loc["five"])["mean"] == 3.0


def test_ties_take_the_order_statistics_as_they_are() -> None:
    # sorted 1, 1, 1, 1, 1, 2 and l = 1: [x(1), x(6)] = [1, 2]; mean 7 / 6
    table = distribution(pd.Series([1.0, 2.0, 1.0, 1.0, 1.0, 1.0]), pd.Series([0] * 6))
    row = as_distribution(table.loc[0])
    assert row["median_ci95"] == [1.0, 2.0]
    assert row["mean"] == 7 / 6


def test_a_distribution_over_two_keys_gets_the_interval_per_pair() -> None:
    # pipelines group by repo and workflow: (1, "ci") has 1..6, (1, "deploy") one value
    repo = pd.Series([1] * 7)
    names = pd.Series(["ci"] * 6 + ["deploy"])
    table = distribution(pd.Series([6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 9.0]), [repo, names])
    assert as_distribution(table.loc[(1, "ci")])["median_ci95"] == [1.0, 6.0]
    assert as_distribution(table.loc[(1, "deploy")]) == {
        "median": 9.0, "p90": 9.0, "mean": 9.0, "median_ci95": None, "n": 1
    }


def test_no_values_keep_the_shape() -> None:
    table = distribution(pd.Series([None, None], dtype=float), pd.Series([1, 1]))
    assert table.empty and list(table.columns) == ["median", "p90", "mean", "ci_low", "ci_high", "n"]
    assert as_distribution(None) == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
