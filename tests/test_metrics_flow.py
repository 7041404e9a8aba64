"""Flow metrics (metrics.md §4), each checked against a value worked out by hand.

The window is [Mon 2026-10-26, Mon 2026-11-23) in UTC unless a test says otherwise.
"""

from __future__ import annotations

import pytest
from test_metrics_scenario import report

from devmetrics.metrics import ReportSettings

WINDOW = {"since": "2026-10-26", "until": "2026-11-23"}


def deploy(created: str, finished: str, **extra: object) -> dict[str, object]:
    return {"deployment_id": created, "created_at": created, "finished_at": finished} | extra


def pr(number: int, created: str, merged: str, **extra: object) -> dict[str, object]:
    return {"number": number, "created_at": created, "merged_at": merged} | extra


def test_lead_time_by_commit_range_and_cycle_time() -> None:
    deployments = [
        deploy("2026-11-03 12:00", "2026-11-03 12:00", sha="1" * 40),
        deploy("2026-11-05 11:50", "2026-11-05 12:00", sha="2" * 40, deployment_id="d2"),
    ]
    commits = [{"deployment_id": "d2", "sha": "a" * 40}]
    prs = [
        # first commit before the PR: start = Nov 3 20:00
        pr(
            1,
            "2026-11-04 08:00",
            "2026-11-04 10:00",
            first_commit_at="2026-11-03 20:00",
            merge_commit_sha="a" * 40,
        ),
        # first commit after the PR was opened (a rebase): start = created = Nov 4 09:00;
        # its merge commit is in no range, and d2's range is known, so no time fallback
        pr(
            2,
            "2026-11-04 09:00",
            "2026-11-04 13:00",
            first_commit_at="2026-11-04 11:00",
            merge_commit_sha="b" * 40,
        ),
    ]
    repo = report(**WINDOW, deployments=deployments, deployment_commits=commits, pull_requests=prs)[1]
    # PR 1: shipped by d2 at Nov 5 12:00 - start Nov 3 20:00 = 40h
    assert repo["lead_time_hours"] == {"median": 40.0, "p90": 40.0, "mean": 40.0, "median_ci95": None, "n": 1}
    # 1 of the 2 merged PRs is linked
    assert repo["lead_time_coverage"] == 0.5
    # cycle: PR 1 10:00 - 20:00 the day before = 14h; PR 2 13:00 - 09:00 = 4h
    # median (14 + 4) / 2 = 9; p90 = 4 + 0.9 * (14 - 4) = 13; mean 9 too
    assert repo["cycle_time_hours"] == {
        "median": 9.0, "p90": pytest.approx(13.0), "mean": 9.0, "median_ci95": None, "n": 2
    }
    assert repo["pull_requests_merged"] == 2


def test_time_fallback_and_pr_merged_before_first_deployment() -> None:
    deployments = [  # no deployment commits were synced for this repo: time decides
        deploy("2026-11-03 12:00", "2026-11-03 12:30", sha="1" * 40),
        deploy("2026-11-05 10:00", "2026-11-05 10:20", sha="2" * 40),
    ]
    prs = [
        pr(1, "2026-11-01 09:00", "2026-11-01 10:00"),  # before the first known deployment
        pr(2, "2026-11-04 08:00", "2026-11-04 09:00"),  # next deployment created Nov 5 10:00
        pr(3, "2026-11-05 09:00", "2026-11-05 10:00"),  # merged as the deployment was created
    ]
    repo = report(**WINDOW, deployments=deployments, pull_requests=prs)[1]
    # PR 2: Nov 5 10:20 - Nov 4 08:00 = 26h20m = 26.333h; PR 3: 10:20 - 09:00 = 1.333h
    # PR 1 is not linked. median (26.333 + 1.333) / 2 = 13.833; p90 = 1.333 + 0.9 * 25 = 23.833
    lead = repo["lead_time_hours"]
    assert lead["n"] == 2
    assert lead["median"] == pytest.approx(13 + 5 / 6)
    assert lead["p90"] == pytest.approx(23 + 5 / 6)
    # 2 of 3 merged PRs linked
    assert repo["lead_time_coverage"] == pytest.approx(2 / 3)


def test_lead_time_is_counted_by_deployment_time() -> None:
    deployments = [
        deploy("2026-10-20 10:00", "2026-10-20 10:00"),
        deploy("2026-11-23 09:00", "2026-11-23 10:00"),
    ]  # after the window
    prs = [pr(1, "2026-11-20 08:00", "2026-11-20 09:00")]
    repo = report(**WINDOW, deployments=deployments, pull_requests=prs)[1]
    # merged in the window (cycle time 1h) but deployed after it: no lead time in this window
    assert repo["lead_time_hours"] == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
    assert repo["cycle_time_hours"]["median"] == 1.0
    assert repo["lead_time_coverage"] == 1.0


def test_bot_draft_and_other_branch_prs_are_left_out() -> None:
    prs = [
        pr(1, "2026-11-02 08:00", "2026-11-02 10:00"),  # counted: 2h
        pr(2, "2026-11-02 08:00", "2026-11-02 18:00", author="dependabot[bot]"),
        pr(3, "2026-11-02 08:00", "2026-11-02 18:00", author="ci", author_is_bot=True),
        pr(4, "2026-11-02 08:00", "2026-11-02 18:00", author="release-robot"),  # configured
        pr(5, "2026-11-02 08:00", "2026-11-02 18:00", draft=True),
        pr(6, "2026-11-02 08:00", "2026-11-02 18:00", base_branch="develop"),
    ]
    settings = ReportSettings(bots=("release-robot",))
    repo = report(**WINDOW, pull_requests=prs, settings=settings)[1]
    assert repo["pull_requests_merged"] == 1
    assert repo["cycle_time_hours"] == {"median": 2.0, "p90": 2.0, "mean": 2.0, "median_ci95": None, "n": 1}


def test_cycle_time_breakdown() -> None:
    deployments = [
        deploy("2026-11-01 00:00", "2026-11-01 00:00"),
        deploy("2026-11-05 06:00", "2026-11-05 06:00"),
    ]
    prs = [
        # coding 10:00-08:00 = 2h, pickup 15:00-12:00 (ready) = 3h, review 18:00-15:00 = 3h,
        # deploy Nov 5 06:00 - Nov 4 18:00 = 12h
        pr(
            1,
            "2026-11-04 10:00",
            "2026-11-04 18:00",
            first_commit_at="2026-11-04 08:00",
            ready_at="2026-11-04 12:00",
            first_review_at="2026-11-04 15:00",
        ),
        # no review: coding 1h, deploy Nov 5 06:00 - Nov 5 02:00 = 4h
        pr(2, "2026-11-05 00:00", "2026-11-05 02:00", first_commit_at="2026-11-04 23:00"),
        # reviewed only after the merge: no pickup or review; coding 0h, deploy 06:00-04:00 = 2h
        pr(3, "2026-11-05 03:00", "2026-11-05 04:00", first_review_at="2026-11-05 05:00"),
        # a response while it was a draft ends no pickup (revision 2026-12-01): no pickup or
        # review part; coding 0h, deploy 06:00-05:00 = 1h
        pr(4, "2026-11-05 01:00", "2026-11-05 05:00", ready_at="2026-11-05 03:00", first_review_at="2026-11-05 02:00"),
    ]
    repo = report(**WINDOW, deployments=deployments, pull_requests=prs)[1]
    # coding median of [2, 1, 0, 0] = 0.5; pickup [3]; review [3]; deploy median of [12, 4, 2, 1] = 3
    assert repo["cycle_time_breakdown_hours"] == {
        "coding": 0.5,
        "pickup": 3.0,
        "review": 3.0,
        "deploy": 3.0,
    }


def test_a_reverted_bot_pr_still_marks_its_deployment_failed() -> None:
    deployments = [
        deploy("2026-11-03 10:00", "2026-11-03 10:10", sha="1" * 40),
        deploy("2026-11-05 10:00", "2026-11-05 10:10", sha="2" * 40),
        deploy("2026-11-07 10:00", "2026-11-07 10:10", sha="3" * 40),
    ]
    prs = [  # no commit ranges: each PR ships with the next deployment created after its merge
        pr(1, "2026-11-04 08:00", "2026-11-04 09:00", author="dependabot[bot]"),
        pr(2, "2026-11-06 08:00", "2026-11-06 09:00", reverts_number=1),
    ]
    repo = report(**WINDOW, deployments=deployments, pull_requests=prs)[1]
    # the bot PR is no flow PR (1 merged PR counted) but its deployment (the 2nd) failed: 1/3
    assert repo["pull_requests_merged"] == 1
    assert repo["change_failure_rate"] == pytest.approx(1 / 3)
