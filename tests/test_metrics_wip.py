"""Work in progress at `until` (metrics.md, revision 2026-12-02), worked out by hand.

The window is [Mon 2026-11-02, Mon 2026-11-30) in UTC: the snapshot is at Nov 30 00:00.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_metrics_scenario import report

from devmetrics.metrics import ReportSettings


def pr(number: int, created: str, **extra: object) -> dict[str, Any]:
    return {"number": number, "created_at": created} | extra


PRS = [
    # open; last active Nov 28 (2 days before until); nobody answered
    pr(1, "2026-11-20 00:00", updated_at="2026-11-28 00:00"),
    # open; answered Nov 2; quiet since Nov 10 (20 days): stale
    pr(2, "2026-11-01 00:00", first_review_at="2026-11-02 00:00", updated_at="2026-11-10 00:00"),
    # merged only after until, ready Nov 26, first answer after until: open and waiting at until
    pr(3, "2026-11-25 12:00", ready_at="2026-11-26 00:00", first_review_at="2026-11-30 06:00",
       merged_at="2026-12-01 00:00", merge_commit_sha="3" * 40, updated_at="2026-12-01 00:00"),
    # merged Nov 15: not open at until
    pr(4, "2026-11-10 00:00", merged_at="2026-11-15 12:00", merge_commit_sha="4" * 40),
    # closed unmerged Nov 29: not open at until
    pr(5, "2026-11-05 00:00", closed_at="2026-11-29 00:00", updated_at="2026-11-29 00:00"),
    # closed only after until; quiet since Oct 2 (59 days): open, stale, waiting
    pr(6, "2026-10-01 00:00", closed_at="2026-12-02 00:00", updated_at="2026-10-02 00:00"),
    pr(7, "2026-11-20 00:00", draft=True),  # a draft (as of the last sync): left out
    pr(8, "2026-11-20 00:00", author="renovate[bot]"),  # a bot's: left out
    pr(9, "2026-11-20 00:00", base_branch="release"),  # not into the default branch: left out
    pr(10, "2026-12-01 00:00"),  # created after until
    # open, but left draft only after until: not waiting (it was a draft then)
    pr(11, "2026-11-27 00:00", ready_at="2026-11-30 09:00", updated_at="2026-11-30 09:00"),
    # last active exactly 14 days before until: not *more* than 14, so not stale; answered
    pr(12, "2026-11-15 00:00", first_review_at="2026-11-15 12:00", updated_at="2026-11-16 00:00"),
]


def test_open_stale_and_waiting_at_until() -> None:
    repo = report(pull_requests=PRS)[1]
    # open at Nov 30: PRs 1, 2, 3, 6, 11, 12
    assert repo["open_pull_requests"] == 6
    # ages: 11: 3d = 72h; 3: 4.5d = 108h; 1: 10d = 240h; 12: 15d = 360h; 2: 29d = 696h;
    # 6: Oct 1 -> Nov 30 = 60d = 1440h. median (240 + 360) / 2 = 300; p90 at rank 0.9 * 5 =
    # 4.5 -> 696 + 0.5 * (1440 - 696) = 1068; mean 2916 / 6 = 486; n = 6, l = 1: [x(1), x(6)]
    assert repo["open_pull_request_age_hours"] == {
        "median": 300.0, "p90": pytest.approx(1068.0), "mean": 486.0, "median_ci95": [72.0, 1440.0], "n": 6
    }
    # quiet for more than 14 days: 2 (20 days) and 6 (59 days); 12 is exactly 14
    assert repo["stale_pull_requests"] == 2
    # ready before until and no answer before it: 1 (240h), 3 (Nov 26 -> 96h), 6 (1440h)
    assert repo["waiting_for_review"] == 3
    # sorted 96, 240, 1440: median 240; p90 at rank 1.8 -> 240 + 0.8 * 1200 = 1200;
    # mean 1776 / 3 = 592; n = 3: no interval
    assert repo["waiting_for_review_hours"] == {
        "median": 240.0, "p90": pytest.approx(1200.0), "mean": 592.0, "median_ci95": None, "n": 3
    }
    # one repo: all repos say the same
    overall = report(pull_requests=PRS, per_repo=False)["all"]
    assert (overall["open_pull_requests"], overall["waiting_for_review"]) == (6, 3)


def test_stale_after_days_comes_from_the_settings() -> None:
    repo = report(pull_requests=PRS, settings=ReportSettings(stale_after_days=7))[1]
    # more than 7 days quiet: 2 (20), 6 (59), 12 (14); not 1 (2), 3 and 11 (after until)
    assert repo["stale_pull_requests"] == 3


def test_the_snapshot_is_taken_at_the_windows_end() -> None:
    repo = report(since="2026-11-01", until="2026-11-15", pull_requests=PRS)[1]
    # open at Nov 15 00:00: 2 (created Nov 1), 4 (merged only Nov 15 12:00), 5 (closed Nov 29),
    # 6 (closed Dec 2); 12 was created at that very moment, not before it
    assert repo["open_pull_requests"] == 4
    # waiting: 4, 5, 6 (2 was answered Nov 2): 4: Nov 10 -> 120h, 5: Nov 5 -> 240h,
    # 6: Oct 1 -> Nov 15 = 45d = 1080h
    assert repo["waiting_for_review"] == 3
    assert repo["waiting_for_review_hours"]["median"] == 240.0


def test_no_open_pull_requests_are_zeros_and_empty_distributions() -> None:
    repo = report(pull_requests=[PRS[3]])[1]
    assert (repo["open_pull_requests"], repo["stale_pull_requests"], repo["waiting_for_review"]) == (0, 0, 0)
    empty = {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
    assert repo["open_pull_request_age_hours"] == empty and repo["waiting_for_review_hours"] == empty
