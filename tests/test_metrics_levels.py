"""Performance levels (metrics.md §7) from the DORA 2023 benchmark data file."""

from __future__ import annotations

import pandas as pd
import pytest

from devmetrics.metrics.levels import levels, load_benchmarks
from devmetrics.metrics.stats import as_distribution, distribution


def test_benchmark_set_names_its_year() -> None:
    assert load_benchmarks("dora-2023")["year"] == 2023


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        # 5 deployment days a week is elite; 1 is high
        ({"deployment_days_per_week_median": 5.0}, "elite"),
        ({"deployment_days_per_week_median": 2.5}, "high"),
        # median 0 days but 0.25 deployments a week (> 1 a month, 0.23/week): medium
        ({"deployment_days_per_week_median": 0.0, "deployment_frequency_per_week": 0.25}, "medium"),
        ({"deployment_days_per_week_median": 0.0, "deployment_frequency_per_week": 0.2}, "low"),
        ({"deployment_days_per_week_median": None}, None),
    ],
)
def test_deployment_frequency_level(metrics: dict[str, object], expected: str | None) -> None:
    assert levels(metrics)["deployment_frequency"] == expected


def test_other_levels_and_missing_values() -> None:
    metrics = {
        "lead_time_hours": {"median": 23.9, "p90": 50.0, "n": 3},  # < 24h: elite
        "change_failure_rate": 0.1,  # <= 10%: high
        "failed_deployment_recovery_hours": {"median": 200.0, "p90": 200.0, "n": 1},  # > 1 week
    }
    assert levels(metrics) == {
        "deployment_frequency": None,
        "lead_time": "elite",
        "change_failure_rate": "high",
        "recovery_time": "low",
    }


def test_distribution_interpolates_linearly_per_group() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 7.0, None])
    keys = pd.Series(["a", "a", "a", "a", "b", "b"])
    table = distribution(values, keys)
    # a: median (2 + 3) / 2 = 2.5; p90 at rank 0.9 * 3 = 2.7 -> 3 + 0.7 * (4 - 3) = 3.7;
    # mean (1 + 2 + 3 + 4) / 4 = 2.5; n = 4 is too few for a median interval
    assert as_distribution(table.loc["a"]) == {
        "median": 2.5, "p90": pytest.approx(3.7), "mean": 2.5, "median_ci95": None, "n": 4
    }
    # b: one value (the None is not a value)
    assert as_distribution(table.loc["b"]) == {"median": 7.0, "p90": 7.0, "mean": 7.0, "median_ci95": None, "n": 1}
    # no values: the shape stays, so scripts can read n
    assert as_distribution(None) == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
