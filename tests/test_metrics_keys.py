"""Sha keys: the same history gives the same numbers whatever its shas hash to.

The calculator reads a sha's first 64 bits as a signed int64 and mixes the repo id in, so
about half of all real shas become negative keys, and any int64 at all is some sha's key.
A missing sha must therefore be a mask, never a number a real sha can take. Each scenario
runs with shas chosen to hash negative, positive and to the edge values that used to be
sentinels (int64 minimum, -1); the expected values are worked out once, by hand.
"""

from __future__ import annotations

import pytest
from test_metrics_scenario import report

MIX = 0x9E3779B97F4A7C15  # keys.py's repo mixing constant, as an unsigned number
INT64_MIN_PREFIX = "8" + "0" * 15  # the first 64 bits read as the int64 minimum
MINUS_ONE_PREFIX = f"{~MIX & (2**64 - 1):016x}"  # repo 1's key of this prefix is exactly -1


def key_of(sha: str, repo_id: int = 1) -> int:
    """The key keys.sha_keys gives a sha, worked out in plain integers."""
    value = (int(sha[:16], 16) ^ (repo_id * MIX)) & (2**64 - 1)
    return value - 2**64 if value >= 2**63 else value


def sha(prefix: str, fill: str) -> str:
    return (prefix + fill * 40)[:40]


# For repo 1 a key is negative exactly when the sha starts with 0-7 (MIX has its top bit set).
SHA_SETS = {
    "negative": [sha("1", "1"), sha("2", "2"), sha("3", "3"), sha("4", "4")],
    "positive": [sha("9", "9"), sha("a", "a"), sha("c", "c"), sha("e", "e")],
    "edges": [sha(INT64_MIN_PREFIX, "0"), sha(MINUS_ONE_PREFIX, "0"), sha("7", "f"), sha("f", "0")],
}


def test_the_sha_sets_hash_as_named() -> None:
    assert all(key_of(s) < 0 for s in SHA_SETS["negative"])
    assert all(key_of(s) > 0 for s in SHA_SETS["positive"])
    assert int(SHA_SETS["edges"][0][:16], 16) - 2**64 == -(2**63)
    assert key_of(SHA_SETS["edges"][1]) == -1


def deploy(deployment_id: str, finished: str, sha_: str) -> dict[str, object]:
    """A production deployment created at :50 of the hour before it finished at `finished`."""
    created = f"{finished[:11]}{int(finished[11:13]) - 1:02d}:50"
    return {"deployment_id": deployment_id, "created_at": created, "finished_at": finished, "sha": sha_}


@pytest.mark.parametrize("name", sorted(SHA_SETS))
def test_rollbacks_shipments_and_pr_merges_do_not_depend_on_the_sha(name: str) -> None:
    own, named, merge, last = SHA_SETS[name]
    deployments = [
        deploy("d1", "2026-11-03 10:00", own),
        deploy("d2", "2026-11-04 10:00", named),
        deploy("d3", "2026-11-05 10:00", own),  # `own` again in production: a rollback
        deploy("d4", "2026-11-12 10:00", last),  # a release: its tag commit is not the merge
    ]
    prs = [{"number": 5, "created_at": "2026-11-12 08:00", "merged_at": "2026-11-12 09:00",
            "merge_commit_sha": merge}]
    incidents = [
        # names d2's own sha, 5 days after d3 (past the 72h time window): linked to d2
        {"incident_id": "i1", "created_at": "2026-11-09 10:00", "resolved_at": "2026-11-09 12:00",
         "linked_sha": named},
        # names PR 5's merge commit, shipped by d4 (no ranges: the first deployment created
        # at or after the merge), 8 days later: linked to d4
        {"incident_id": "i2", "created_at": "2026-11-20 10:00", "resolved_at": "2026-11-20 11:00",
         "linked_sha": merge},
    ]
    repo = report(deployments=deployments, pull_requests=prs, incidents=incidents)[1]
    assert repo["deployments"] == 4
    # rework: d3 redeploys d1's sha to production = 1 of 4
    assert repo["rework_rate"] == 0.25
    # failed: d2 (i1 names its sha) and d4 (i2 names a commit it shipped) = 2 of 4
    assert repo["change_failure_rate"] == 0.5
    assert repo["incident_link_coverage"] == 1.0
    # recovery: i1 Nov 9 12:00 - d2 Nov 4 10:00 = 122h; i2 Nov 20 11:00 - d4 Nov 12 10:00 =
    # 193h; median (122 + 193) / 2 = 157.5 (the mean too), p90 = 122 + 0.9 * (193 - 122) = 185.9
    assert repo["failed_deployment_recovery_hours"] == {
        "median": 157.5, "p90": pytest.approx(185.9), "mean": 157.5, "median_ci95": None, "n": 2
    }
    # PR 5: d4 finished Nov 12 10:00 - created Nov 12 08:00 = 2h
    assert repo["lead_time_hours"] == {"median": 2.0, "p90": 2.0, "mean": 2.0, "median_ci95": None, "n": 1}


def test_a_missing_sha_matches_no_real_sha_not_even_one_keyed_minus_one() -> None:
    ranged = SHA_SETS["edges"][1]  # key -1: the number that used to mean "no sha"
    deployments = [deploy("d1", "2026-11-03 10:00", sha("a", "a")), deploy("d2", "2026-11-10 10:00", sha("b", "b"))]
    # a range also holding a short sha (no key at all): it must not match a missing sha either
    commits = [{"deployment_id": "d2", "sha": ranged}, {"deployment_id": "d2", "sha": "abc1234"}]
    prs = [{"number": 9, "created_at": "2026-11-20 08:00", "merged_at": "2026-11-20 09:00", "merge_commit_sha": None}]
    incidents = [{"incident_id": "i1", "created_at": "2026-11-25 10:00", "resolved_at": "2026-11-25 11:00"}]
    repo = report(deployments=deployments, deployment_commits=commits, pull_requests=prs, incidents=incidents)[1]
    # the incident names no sha and comes 15 days after d2: linked to nothing
    assert repo["incident_link_coverage"] == 0.0
    assert repo["change_failure_rate"] == 0.0
    assert repo["failed_deployment_recovery_hours"] == {
        "median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0
    }
    # PR 9 has no merge commit and no deployment came after it: shipped by none
    assert repo["lead_time_coverage"] == 0.0
    assert repo["lead_time_hours"] == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
