"""Delivery metrics (metrics.md §3), each checked against a value worked out by hand.

Unless a test says otherwise the window is [Mon 2026-11-02, Mon 2026-11-30) in UTC:
28 days, so 4 weeks and four whole 7-day buckets.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_metrics_scenario import report

from devmetrics.metrics import ReportSettings


def deploy(day: str, status: str = "success", **extra: object) -> dict[str, object]:
    """A production deployment created 10 minutes before it finished at `day`."""
    finished = f"{day}:00" if len(day) == 16 else f"{day} 12:00:00"
    created = str(pd.Timestamp(finished) - pd.Timedelta(minutes=10))
    return {
        "deployment_id": day + status + str(extra.get("sha")),
        "created_at": created,
        "finished_at": finished,
        "status": status,
    } | extra


def test_counts_frequency_and_success_rate() -> None:
    rows = [
        deploy("2026-11-03"),
        deploy("2026-11-10"),
        deploy("2026-11-17"),
        deploy("2026-11-18", "inactive"),  # superseded later: still a success
        deploy("2026-11-19", "failure"),
        deploy("2026-11-20", "error"),
        deploy("2026-11-21", "in_progress"),  # unfinished: not counted anywhere
        deploy("2026-10-30"),  # before the window
    ]
    repo = report(deployments=rows)[1]
    # successful in the window: 3 success + 1 inactive = 4
    assert repo["deployments"] == 4
    # 4 / (28 days / 7) = 1.0 per week
    assert repo["deployment_frequency_per_week"] == 1.0
    # 4 successful / (4 successful + 1 failure + 1 error) = 4/6
    assert repo["deployment_success_rate"] == pytest.approx(4 / 6)


def test_inactive_alone_counts_as_success() -> None:
    repo = report(deployments=[deploy("2026-11-04", "inactive")])[1]
    # 1 inactive = 1 successful of 1 finished
    assert repo["deployments"] == 1
    assert repo["deployment_success_rate"] == 1.0


def test_no_deployments_gives_nulls_not_zeros() -> None:
    repo = report(
        pull_requests=[
            {
                "number": 1,
                "created_at": "2026-11-03 09:00",
                "merged_at": "2026-11-03 10:00",
                "merge_commit_sha": "m1",
            }
        ]
    )[1]
    unknown = set(repo) - {
        "incidents",
        "incident_link_coverage",
        "pull_requests_merged",
        "lead_time_coverage",
        "cycle_time_hours",
        "cycle_time_breakdown_hours",
        "open_pull_requests",
        "stale_pull_requests",
        "waiting_for_review",
    }
    distributions = {"time_to_restore_hours", "failed_deployment_recovery_hours", "lead_time_hours",
                     "pipeline_duration_minutes", "time_to_detect_hours", "open_pull_request_age_hours",
                     "waiting_for_review_hours"}
    for key in sorted(unknown - distributions):  # every deployment-, incident- and pipeline-based metric
        assert repo[key] is None, key
    for key in sorted(distributions):  # no values, but the shape stays (revision 2026-12-01)
        assert repo[key] == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}, key
    # counts with nothing to count are real zeros; the one merged PR shipped nowhere: 0/1
    assert repo["incidents"] == 0
    assert repo["lead_time_coverage"] == 0.0


def test_deployments_outside_the_window_give_zero_and_null_rates() -> None:
    repo = report(deployments=[deploy("2026-10-01")])[1]
    # the signal has data, so the count is a true 0; rates over 0 deployments are unknown
    assert repo["deployments"] == 0
    assert repo["deployment_frequency_per_week"] == 0.0
    assert repo["deployment_days_per_week_median"] == 0.0
    assert repo["deployment_success_rate"] is None
    assert repo["change_failure_rate"] is None


def test_production_pattern_and_signal() -> None:
    repos = [
        {"id": 1, "full_name": "acme/api"},
        {"id": 2, "full_name": "acme/web"},
        {"id": 3, "full_name": "acme/ops", "deployment_signal": "workflow"},
    ]
    rows = [
        deploy("2026-11-03", environment="Production"),  # default pattern ignores case
        deploy("2026-11-04", environment="prod"),
        deploy("2026-11-05", environment="staging"),  # not production
        deploy("2026-11-06", environment="production-eu"),  # anchored: not production
        deploy("2026-11-03", repo_id=2, environment="live"),
        deploy("2026-11-04", repo_id=2, environment="production"),
        deploy("2026-11-03", repo_id=3, source="workflow", environment=None),
        deploy("2026-11-04", repo_id=3, environment="production"),  # not the repo's signal
    ]
    settings = ReportSettings(production_patterns={"acme/web": "^live$"})
    result = report(repositories=repos, deployments=rows, settings=settings)
    # api: Production + prod = 2; web (pattern ^live$): live = 1; ops (workflow): 1 run
    assert [result[i]["deployments"] for i in (1, 2, 3)] == [2, 1, 1]


def test_empty_production_pattern_matches_nothing() -> None:
    settings = ReportSettings(production_pattern="")
    repo = report(deployments=[deploy("2026-11-03")], settings=settings)[1]
    # no deployment is production, so the repo has no deployment data at all
    assert repo["deployments"] is None


def test_deployment_days_per_week_median_drops_the_trailing_partial_bucket() -> None:
    rows = [
        deploy("2026-11-03 09:00"),
        deploy("2026-11-03 15:00"),  # same day twice
        deploy("2026-11-04"),
        deploy("2026-11-05"),
        deploy("2026-11-20"),
        deploy("2026-11-23"),  # in the partial bucket [Nov 23, Nov 25): dropped
    ]
    repo = report(since="2026-11-02", until="2026-11-25", deployments=rows)[1]
    # 23 days -> 3 whole buckets: Nov 2-8 has 3 days (3rd, 4th, 5th), Nov 9-15 has 0 (kept),
    # Nov 16-22 has 1 (20th); median of [3, 0, 1] = 1
    assert repo["deployment_days_per_week_median"] == 1.0


def test_deployment_days_follow_the_report_timezone() -> None:
    rows = [deploy("2026-11-03 12:00"), deploy("2026-11-08 23:30")]
    utc = report(since="2026-11-02", until="2026-11-23", deployments=rows)[1]
    berlin = report(
        since="2026-11-02",
        until="2026-11-23",
        deployments=rows,
        settings=ReportSettings(timezone="Europe/Berlin"),
    )[1]
    # UTC: Sun Nov 8 23:30 is in week 1 with Nov 3 -> buckets [2, 0, 0], median 0
    assert utc["deployment_days_per_week_median"] == 0.0
    # Berlin (UTC+1): it is Mon Nov 9 00:30, the next ISO week -> [1, 1, 0], median 1
    assert berlin["deployment_days_per_week_median"] == 1.0


def incident(created: str, resolved: str, **extra: object) -> dict[str, object]:
    return {"incident_id": created, "created_at": created, "resolved_at": resolved} | extra


def test_incident_link_window_is_inclusive_at_72_hours() -> None:
    rows = [deploy("2026-11-03 10:00", sha="a" * 40), deploy("2026-11-10 10:00", sha="b" * 40)]
    incidents = [
        incident("2026-11-06 10:00", "2026-11-06 12:00"),  # 72h00m after the 1st: linked
        incident("2026-11-13 10:01", "2026-11-13 16:01"),  # 72h01m after the 2nd: not linked
    ]
    repo = report(deployments=rows, incidents=incidents)[1]
    assert repo["incidents"] == 2
    # one of the two deployments is linked to an incident: 1/2
    assert repo["change_failure_rate"] == 0.5
    # 2 incidents / 2 deployments
    assert repo["incidents_per_deploy"] == 1.0
    assert repo["incident_link_coverage"] == 0.5
    # restore times 2h and 6h: median 4, p90 = 2 + 0.9 * (6 - 2) = 5.6, mean (2 + 6) / 2 = 4;
    # n = 2 is too few for a median interval
    assert repo["time_to_restore_hours"] == {
        "median": 4.0, "p90": pytest.approx(5.6), "mean": 4.0, "median_ci95": None, "n": 2
    }
    # linked incident resolved Nov 6 12:00 - deployment finished Nov 3 10:00 = 74h
    assert repo["failed_deployment_recovery_hours"] == {
        "median": 74.0, "p90": 74.0, "mean": 74.0, "median_ci95": None, "n": 1
    }


def test_an_incident_in_the_same_second_links_to_the_deployment_that_just_finished() -> None:
    # contract revision 2026-12-01: the last deployment finished AT OR BEFORE the incident
    rows = [
        deploy("2026-11-03 10:00", sha="a" * 40),
        deploy("2026-11-05 10:00", sha="b" * 40, deployment_id="d2", finished_at="2026-11-05 10:00:07"),
    ]
    incidents = [incident("2026-11-05 10:00:07", "2026-11-05 11:00:07")]  # the very second d2 finished
    repo = report(deployments=rows, incidents=incidents)[1]
    # linked to d2, not to the first deployment (2 days earlier, also inside the 72h window)
    assert repo["change_failure_rate"] == 0.5
    # recovery: 11:00:07 - d2's 10:00:07 = 1h (linked to the first it would be 49h)
    assert repo["failed_deployment_recovery_hours"] == {
        "median": 1.0, "p90": 1.0, "mean": 1.0, "median_ci95": None, "n": 1
    }


def test_time_to_detect_is_creation_minus_the_linked_deployments_finish() -> None:
    # contract revision 2026-12-02; the window is [Nov 2, Nov 30)
    rows = [
        deploy("2026-10-30 10:00", sha="0" * 40),
        deploy("2026-11-03 10:00", sha="a" * 40),
        deploy("2026-11-10 10:00", sha="b" * 40),
        deploy("2026-11-20 10:00", sha="c" * 40),
    ]
    incidents = [
        incident("2026-10-31 10:00", "2026-10-31 12:00"),  # 24h after Oct 30, but created before the window
        incident("2026-11-04 10:00", "2026-11-04 12:00"),  # Nov 3 10:00 -> 24h
        incident("2026-11-10 10:00", "2026-11-10 12:00"),  # the second Nov 10's finished -> 0h
        incident("2026-11-10 16:00", "2026-11-10 18:00"),  # Nov 10 10:00 -> 6h
        incident("2026-11-25 10:00", "2026-11-25 11:00"),  # 120h after Nov 20: linked to none
    ]
    repo = report(deployments=rows, incidents=incidents)[1]
    # values 0, 6, 24: median 6; p90 at rank 0.9 * 2 = 1.8 -> 6 + 0.8 * (24 - 6) = 20.4;
    # mean (0 + 6 + 24) / 3 = 10; n = 3 is too few for a median interval
    assert repo["time_to_detect_hours"] == {
        "median": 6.0, "p90": pytest.approx(20.4), "mean": 10.0, "median_ci95": None, "n": 3
    }
    assert report(deployments=rows, incidents=incidents, per_repo=False)["all"]["time_to_detect_hours"]["n"] == 3
    # no incidents: the empty distribution
    empty = report(deployments=rows)[1]["time_to_detect_hours"]
    assert empty == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}


def test_an_incident_opened_before_its_explicitly_linked_deployment_is_not_detected_by_it() -> None:
    rows = [deploy("2026-11-10 10:00", sha="b" * 40), deploy("2026-11-20 10:00", sha="c" * 40)]
    # names the Nov 20 deployment's sha but was opened on Nov 12, before it finished
    incidents = [incident("2026-11-12 09:00", "2026-11-12 10:00", linked_sha="c" * 40)]
    repo = report(deployments=rows, incidents=incidents)[1]
    assert repo["incident_link_coverage"] == 1.0  # linked (and a change failure of Nov 20) ...
    assert repo["time_to_detect_hours"]["n"] == 0  # ... but 9:00 - Nov 20 10:00 < 0: left out


def test_explicit_sha_or_pr_wins_over_time() -> None:
    rows = [
        deploy("2026-11-03 10:00", sha="a" * 40),
        deploy("2026-11-10 10:00", sha="b" * 40, deployment_id="d2"),
        deploy("2026-11-11 10:00", sha="c" * 40),
    ]
    commits = [{"deployment_id": "d2", "sha": "f" * 40}]
    prs = [
        {
            "number": 7,
            "created_at": "2026-11-09 08:00",
            "merged_at": "2026-11-09 09:00",
            "merge_commit_sha": "f" * 40,
        }
    ]
    incidents = [
        # names the 1st deployment's sha (short form) a week later: linked to it anyway
        incident("2026-11-11 11:00", "2026-11-11 12:00", linked_sha="aaaaaaa"),
        # names PR 7, shipped by the 2nd deployment (its range holds f...f)
        incident("2026-11-11 11:30", "2026-11-11 12:30", linked_pr=7),
    ]
    repo = report(deployments=rows, deployment_commits=commits, pull_requests=prs, incidents=incidents)[1]
    # the 1st and 2nd deployments failed, the 3rd (latest before both incidents) did not: 2/3
    assert repo["change_failure_rate"] == pytest.approx(2 / 3)
    # recovery: Nov 11 12:00 - Nov 3 10:00 = 194h; Nov 11 12:30 - Nov 10 10:00 = 26.5h;
    # median (194 + 26.5) / 2 = 110.25
    assert repo["failed_deployment_recovery_hours"]["median"] == 110.25


def test_revert_marks_the_shipping_deployment_failed_and_is_rework() -> None:
    rows = [
        deploy("2026-11-03 10:00", sha="a" * 40),
        deploy("2026-11-05 10:00", sha="b" * 40, deployment_id="d2"),
        deploy("2026-11-07 10:00", sha="c" * 40, deployment_id="d3"),
    ]
    commits = [{"deployment_id": "d2", "sha": "1" * 40}, {"deployment_id": "d3", "sha": "2" * 40}]
    prs = [
        {
            "number": 1,
            "created_at": "2026-11-04 08:00",
            "merged_at": "2026-11-04 09:00",
            "merge_commit_sha": "1" * 40,
        },
        {
            "number": 2,
            "title": 'Revert "thing"',
            "created_at": "2026-11-06 08:00",
            "merged_at": "2026-11-06 09:00",
            "merge_commit_sha": "2" * 40,
            "reverts_number": 1,
        },
    ]
    repo = report(deployments=rows, deployment_commits=commits, pull_requests=prs)[1]
    # d2 shipped PR 1, which PR 2 reverted: 1 failed of 3 deployments
    assert repo["change_failure_rate"] == pytest.approx(1 / 3)
    # d3 shipped the revert: 1 rework of 3
    assert repo["rework_rate"] == pytest.approx(1 / 3)


def test_rollback_and_hotfix_are_rework() -> None:
    rows = [
        deploy("2026-11-03 10:00", sha="a" * 40),
        deploy("2026-11-04 10:00", sha="b" * 40),
        deploy("2026-11-05 10:00", sha="a" * 40),  # a again in production: a rollback
        deploy("2026-11-06 10:00", sha="b" * 40, environment="staging"),  # not production
        deploy("2026-11-09 10:00", sha="c" * 40, deployment_id="d5"),
    ]
    prs = [
        {
            "number": 3,
            "labels": ["HotFix"],
            "created_at": "2026-11-09 08:00",
            "merged_at": "2026-11-09 09:00",
            "merge_commit_sha": "c" * 40,
        }
    ]
    repo = report(deployments=rows, pull_requests=prs)[1]
    # 4 production deployments; rework: the rollback (3rd) and d5 shipping a hotfix PR = 2/4
    assert repo["deployments"] == 4
    assert repo["rework_rate"] == 0.5


def test_all_repos_pool_their_rows() -> None:
    repos = [{"id": 1, "full_name": "acme/api"}, {"id": 2, "full_name": "acme/web"}]
    rows = [
        deploy("2026-11-03"),
        deploy("2026-11-04"),
        deploy("2026-11-05", repo_id=2),
        deploy("2026-11-06", "failure", repo_id=2),
    ]
    everything = report(repositories=repos, deployments=rows, per_repo=False)["all"]
    # 3 successful of 4 finished across both repos; 3 / 4 weeks = 0.75 per week
    assert everything["deployments"] == 3
    assert everything["deployment_success_rate"] == 0.75
    assert everything["deployment_frequency_per_week"] == 0.75


def test_per_repo_settings_accept_owner_globs() -> None:
    repos = [{"id": 1, "full_name": "acme/api"}, {"id": 2, "full_name": "other/web"}]
    rows = [
        deploy("2026-11-03", environment="live"),
        deploy("2026-11-03", repo_id=2, environment="live"),
        deploy("2026-11-04", repo_id=2, environment="production"),
    ]
    # acme/* (a source's `repos = ["acme/*"]`) reads "live" as production; other/web keeps
    # the default pattern; an exact name would win over the glob
    settings = ReportSettings(production_patterns={"acme/*": "^live$"})
    result = report(repositories=repos, deployments=rows, settings=settings)
    assert [result[i]["deployments"] for i in (1, 2)] == [1, 1]
