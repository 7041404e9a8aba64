"""Grouped statistics: every distribution is median, p90, mean, a 95 % interval for the median
and n; no data is None, and a distribution with no data keeps its shape (`empty_distribution`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom

TIME_COLUMNS = (
    "created_at",
    "ready_at",
    "first_commit_at",
    "first_review_at",
    "merged_at",
    "closed_at",
    "updated_at",
    "finished_at",
    "started_at",
    "resolved_at",
)
HOUR = pd.Timedelta(hours=1)
# The columns of a distribution's frame; `as_distribution` turns a row into the report's dict.
DISTRIBUTION_COLUMNS = ["median", "p90", "mean", "ci_low", "ci_high", "n"]
# metric name -> per-group Series (a scalar metric) or DataFrame (DISTRIBUTION_COLUMNS)
Summary = dict[str, pd.Series | pd.DataFrame]


def group_keys(frame: pd.DataFrame, per_repo: bool) -> pd.Series:
    """The groupby key: the repo id, or one constant group for all repos."""
    if per_repo:
        return frame["repo_id"]
    return pd.Series(np.zeros(len(frame), dtype=np.int64), index=frame.index)


def distribution(values: pd.Series, keys: pd.Series | list[pd.Series]) -> pd.DataFrame:
    """median, p90 (linear interpolation, pandas' default), mean, the median's 95 % interval
    (`ci_low`, `ci_high`; see `median_ci_rank`) and n of `values` per key."""
    present = values.notna()
    by = [key[present] for key in keys] if isinstance(keys, list) else keys[present]
    kept = values[present].astype(float)
    grouped = kept.groupby(by)
    n = grouped.count()
    if n.empty:
        return pd.DataFrame({column: n.astype(float) for column in DISTRIBUTION_COLUMNS} | {"n": n})
    quantiles = grouped.quantile([0.5, 0.9]).unstack()
    low, high = median_ci95(kept, grouped, by)
    # fsum: the exactly rounded sum, so the mean does not depend on the order the store
    # returned the rows in (PostgreSQL and SQLite order them differently)
    mean = grouped.agg(math.fsum) / n
    columns = [quantiles[0.5], quantiles[0.9], mean, low, high, n]
    return pd.DataFrame(dict(zip(DISTRIBUTION_COLUMNS, columns, strict=True)))


def median_ci_rank(n: Any) -> Any:
    """l of metrics.md's 2026-12-02 revision: the largest k with P(B <= k - 1) <= 0.025 for
    B ~ Binomial(n, 1/2); 0 when there is none (n <= 5). Works on a number or an array.

    binom.ppf(0.025) is the smallest q with P(B <= q) >= 0.025, and P(B <= q) is a multiple of
    1/2^n, never exactly 1/40, so q - 1 is the largest k - 1 with P(B <= k - 1) < 0.025: l = q.
    (tests/test_metrics_stats.py checks this against exact integer arithmetic.)
    """
    return np.asarray(binom.ppf(0.025, n, 0.5)).astype(np.int64)


def median_ci95(values: pd.Series, grouped: Any, by: Any) -> tuple[pd.Series, pd.Series]:
    """The order statistics x(l) and x(n + 1 - l) of each group (NaN when l = 0)."""
    rank = grouped.rank(method="first")  # 1-based position in the group's sorted values
    size = grouped.transform("count").to_numpy()
    lowest = median_ci_rank(size)
    low = values.where((rank == lowest) & (lowest > 0)).groupby(by).max()
    high = values.where((rank == size + 1 - lowest) & (lowest > 0)).groupby(by).max()
    return low, high


def lookup(table: pd.Series, keys: pd.Series) -> pd.Series:
    """table[key] for each key, aligned with `keys` (missing keys give NaN/NaT).

    `.array` keeps a nullable key's mask: a <NA> key finds nothing.
    """
    return pd.Series(table.reindex(keys.array).array, index=keys.index, name=table.name)


def count(mask: pd.Series, keys: pd.Series) -> pd.Series:
    """How many rows of each key match `mask` (keys with no match get 0)."""
    return mask.astype(int).groupby(keys).sum()


def ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, NaN (later None) where the denominator is 0 or missing."""
    return numerator / denominator.where(denominator > 0)


def first_true(conditions: Mapping[str, pd.Series]) -> pd.Series:
    """Per row, the name of the first condition that holds (missing where none does)."""
    index = next(iter(conditions.values())).index
    flags = [condition.fillna(False).to_numpy(dtype=bool) for condition in conditions.values()]
    codes = np.select(flags, list(range(len(flags))), default=-1)
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(conditions)), index=index)


def hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier) / HOUR


def clean(value: Any) -> Any:
    """A JSON-ready scalar: NaN/NA become None, numpy numbers become Python numbers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def empty_distribution() -> dict[str, Any]:
    """Every field None and n 0: scripts can read n even when there is no value."""
    return {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}


def as_distribution(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A {median, p90, mean, median_ci95, n} dict; the empty distribution when there is no value."""
    if row is None or clean(row.get("n")) in (None, 0):
        return empty_distribution()
    low, high = clean(row["ci_low"]), clean(row["ci_high"])
    return {
        "median": clean(row["median"]),
        "p90": clean(row["p90"]),
        "mean": clean(row["mean"]),
        "median_ci95": None if low is None or high is None else [low, high],
        "n": int(row["n"]),
    }


def utc_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Every known time column as datetime64[ns, UTC], so merges and comparisons agree."""
    wrong = {
        column: pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
        for column in TIME_COLUMNS
        if column in frame.columns and frame[column].dtype != "datetime64[ns, UTC]"
    }
    return frame.assign(**wrong) if wrong else frame
