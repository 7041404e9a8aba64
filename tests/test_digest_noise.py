"""The digest's noise test (metrics.md 2026-12-02): p-values worked by hand, then the verdicts."""

from __future__ import annotations

from math import comb

import pytest

from devmetrics.digest.noise import p_value, sample_size, verdict


def test_count_uses_the_exact_binomial_test() -> None:
    # 5 deployments last week, 20 this week: X = 20 of 25 at 1/2.
    # P(X >= 20) = (C(25,20) + C(25,21) + ... + C(25,25)) / 2^25
    #            = (53130 + 12650 + 2300 + 300 + 25 + 1) / 33554432 = 68406 / 33554432 = 0.0020387
    one_side = sum(comb(25, k) for k in range(20, 26)) / 2**25
    assert one_side == pytest.approx(0.0020387, abs=1e-7)
    test, p = p_value("count", 20, 5)
    assert test == "binomial-exact" and p == pytest.approx(2 * one_side)  # symmetric at 1/2
    assert verdict("count", 20, 5, 15, higher_is_better=True).word == "better"
    assert verdict("count", 20, 5, 15, higher_is_better=False).word == "worse"  # incidents
    # 10 -> 20: P(X >= 20 of 30) = 0.0494, two-sided 0.0987 >= 0.05: within noise
    assert p_value("count", 20, 10)[1] == pytest.approx(0.0987, abs=1e-4)
    assert verdict("count", 20, 10, 10, higher_is_better=True).word == "within noise"


def test_rate_uses_fishers_exact_test() -> None:
    # 0 of 10 deployments failed this week, 6 of 10 last week. Margins: 20 deployments, 6
    # failures, 10 this week; hypergeometric P(X = x) = C(10, x) C(10, 6 - x) / C(20, 6):
    # P(0) = 210 / 38760 = 0.005418 = P(6); P(1) = 2520 / 38760 = 0.065 > P(0), so the
    # two-sided p (every table no likelier than this one) = 2 * 0.005418 = 0.010836
    test, p = p_value("rate", (0, 10), (6, 10))
    assert test == "fisher-exact" and p == pytest.approx(2 * 210 / 38760)
    assert verdict("rate", (0, 10), (6, 10), -0.6, higher_is_better=False).word == "better"
    # 4 of 10 against 6 of 10: P(4) + P(6) + ... far above 0.05: within noise
    assert verdict("rate", (4, 10), (6, 10), -0.2, higher_is_better=False).word == "within noise"


def test_distribution_uses_mann_whitney_u() -> None:
    # every value this week below every value last week: U = 0; of the C(10, 5) = 252 equally
    # likely orderings under no change, one has U = 0 and one U = 25: p = 2 / 252 = 0.0079
    test, p = p_value("distribution", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert test == "mann-whitney-u" and p == pytest.approx(2 / 252)
    assert verdict("distribution", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], -5, False).word == "better"
    # interleaved values (U = 10 of 25): no evidence of a change
    assert verdict("distribution", [1, 3, 5, 7, 9], [2, 4, 6, 8, 10], -1, False).word == "within noise"
    # identical weeks: every value tied, p = 1
    assert verdict("distribution", [3] * 5, [3] * 6, 0.5, False).word == "within noise"


def test_few_events_flat_and_no_data() -> None:
    # below the threshold in either week (default n < 5): few events, whatever the test says
    assert verdict("count", 20, 4, 16, True).word == "few events"
    assert verdict("rate", (0, 4), (6, 10), -0.6, False).word == "few events"
    assert verdict("distribution", [1, 2, 3, 4], [6, 7, 8, 9, 10], -5, False).word == "few events"
    assert verdict("count", 20, 4, 16, True, min_events=3).word == "better"
    assert verdict("count", 7, 7, 0, True).word == "flat"
    assert verdict("count", None, 7, None, True).word == "no data"
    assert verdict("distribution", None, [1.0] * 6, 2.0, True).word == "not tested"  # no samples
    # the n of each kind: the count itself, a rate's trials, a distribution's values
    assert (sample_size("count", 7), sample_size("rate", (2, 9)), sample_size("distribution", [1.0, 2.0])) == (7, 9, 2)
