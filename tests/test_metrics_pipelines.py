"""Pipeline metrics (metrics.md §5), checked against values worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from test_metrics_scenario import report


def run(name: str, conclusion: str, start: str, minutes: int, **extra: object) -> dict[str, object]:
    finished = str(pd.Timestamp(start) + pd.Timedelta(minutes=minutes))
    return {
        "run_id": f"{name}{start}{conclusion}",
        "name": name,
        "conclusion": conclusion,
        "started_at": start,
        "finished_at": finished,
    } | extra


def test_duration_and_success_rate_overall_and_per_workflow() -> None:
    runs = [
        run("ci", "success", "2026-11-03 10:00", 10),
        run("ci", "failure", "2026-11-03 11:00", 20),
        run("ci", "success", "2026-11-03 12:00", 50, duration_seconds=1800),  # forge: 30 min
        run("ci", "cancelled", "2026-11-03 13:00", 5),  # left out
        run("ci", "skipped", "2026-11-03 14:00", 0),  # left out
        run("deploy", "success", "2026-11-04 10:00", 40),
        run("deploy", "success", "2026-10-30 10:00", 99),  # finished before the window
    ]
    repo = report(pipeline_runs=runs)[1]
    # durations 10, 20, 30, 40: median 25; p90 at rank 0.9*3 = 2.7 -> 30 + 0.7*10 = 37; mean 100 / 4 = 25
    assert repo["pipeline_duration_minutes"] == {
        "median": 25.0, "p90": pytest.approx(37.0), "mean": 25.0, "median_ci95": None, "n": 4
    }
    # 3 successes of 4 completed
    assert repo["pipeline_success_rate"] == 0.75
    ci = repo["pipelines"]["ci"]
    # ci: 10, 20, 30 -> median 20, p90 at rank 1.8 -> 20 + 0.8*10 = 28; 2 of 3 succeeded
    assert ci["median"] == 20.0
    assert ci["p90"] == pytest.approx(28.0)
    assert ci["mean"] == 20.0  # (10 + 20 + 30) / 3
    assert ci["success_rate"] == pytest.approx(2 / 3)
    assert repo["pipelines"]["deploy"] == {
        "median": 40.0, "p90": 40.0, "mean": 40.0, "median_ci95": None, "n": 1, "success_rate": 1.0
    }
