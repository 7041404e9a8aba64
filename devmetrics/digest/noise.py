"""Is a week-over-week change larger than noise? (the contract's 2026-12-02 revision)

    verdict(kind, this, previous, delta, higher_is_better, min_events) -> Verdict

A change is *better* or *worse* only when a two-sided test at p < 0.05 says the two weeks
differ: Mann-Whitney U over the two weeks' values for a distribution, Fisher's exact test
of the 2x2 counts for a rate, and an exact binomial test of c2 out of c1 + c2 at 1/2 for a
count. Otherwise it is *within noise*. Either week below `min_events` (default 5) is *few
events* and is never called better or worse. All three tests are scipy.stats'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

ALPHA = 0.05
DEFAULT_MIN_EVENTS = 5
Kind = Literal["count", "rate", "distribution"]
# What a test needs of one week: a count, (events, trials) for a rate, the values of a distribution.
Sample = int | tuple[int, int] | Sequence[float]
VERDICTS = ("better", "worse", "within noise", "few events", "flat", "no data", "not tested")


@dataclass(frozen=True)
class Verdict:
    word: str  # one of VERDICTS
    test: str | None = None  # "mann-whitney-u" | "fisher-exact" | "binomial-exact"
    p_value: float | None = None


def sample_size(kind: Kind, sample: Sample | None) -> int | None:
    """The week's n: the count itself, a rate's trials, a distribution's number of values."""
    if sample is None:
        return None
    if kind == "count":
        return int(sample)  # type: ignore[arg-type]
    if kind == "rate":
        return int(sample[1])  # type: ignore[index]
    return len(sample)  # type: ignore[arg-type]


def p_value(kind: Kind, this: Sample, previous: Sample) -> tuple[str, float]:
    """The two-sided test of the contract for this kind of figure, and its p-value."""
    if kind == "count":
        c1, c2 = int(previous), int(this)  # type: ignore[arg-type]
        return "binomial-exact", float(stats.binomtest(c2, c1 + c2, 0.5).pvalue)
    if kind == "rate":
        (k2, n2), (k1, n1) = this, previous  # type: ignore[misc]
        table = [[k2, n2 - k2], [k1, n1 - k1]]
        return "fisher-exact", float(stats.fisher_exact(table).pvalue)
    result = stats.mannwhitneyu(list(this), list(previous), alternative="two-sided")  # type: ignore[arg-type]
    return "mann-whitney-u", float(result.pvalue)


def verdict(kind: Kind, this: Sample | None, previous: Sample | None, delta: float | None,
            higher_is_better: bool, min_events: int = DEFAULT_MIN_EVENTS) -> Verdict:
    """better / worse (significant at p < 0.05), within noise, few events, flat, no data."""
    if delta is None:
        return Verdict("no data")
    if this is None or previous is None:
        return Verdict("not tested")
    sizes = (sample_size(kind, this), sample_size(kind, previous))
    if any(size is None or size < min_events for size in sizes):
        return Verdict("few events")
    if delta == 0:
        return Verdict("flat")
    test, p = p_value(kind, this, previous)
    if math.isnan(p) or p >= ALPHA:
        return Verdict("within noise", test, None if math.isnan(p) else p)
    improved = (delta > 0) == higher_is_better
    return Verdict("better" if improved else "worse", test, p)
