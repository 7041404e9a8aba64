"""GitLab payloads → records: the forge quirks, one small payload each (no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devmetrics.connectors import gitlab_records as records


def mr(**fields: Any) -> dict[str, Any]:
    base = {
        "iid": 7,
        "title": "Fix login",
        "description": "",
        "author": {"username": "alice"},
        "created_at": "2026-11-01T10:00:00.000Z",
        "updated_at": "2026-11-02T10:00:00.000Z",
        "merged_at": None,
        "closed_at": None,
        "draft": False,
        "labels": [],
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "source_branch": "fix",
        "target_branch": "main",
    }
    return base | fields


def note(body: str, at: str, user: str = "bob", system: bool = False, bot: bool = False) -> dict[str, Any]:
    return {"body": body, "createdAt": at, "system": system, "author": {"username": user, "bot": bot}}


def test_times_with_offsets_become_utc() -> None:
    assert records.parse_time("2012-09-20T11:50:22+03:00") == datetime(2012, 9, 20, 8, 50, 22, tzinfo=UTC)
    assert records.parse_time(None) is None


def test_ready_is_the_last_ready_note_and_the_old_wip_wording_counts() -> None:
    notes = [
        note("marked this merge request as **ready**", "2026-11-01T12:00:00Z", "alice", system=True),
        note("marked this merge request as **draft**", "2026-11-01T13:00:00Z", "alice", system=True),
        note("unmarked as a **Work In Progress**", "2026-11-01T15:00:00Z", "alice", system=True),
    ]
    record = records.pull_request(mr(), {"notes": notes, "commits": []}, {}, ())
    assert record.ready_at == datetime(2026, 11, 1, 15, tzinfo=UTC)


def test_first_review_skips_the_author_bots_and_system_notes_but_not_approvals() -> None:
    notes = [
        note("Coverage 91%", "2026-11-01T11:00:00Z", "codecov", bot=True),
        note("context", "2026-11-01T11:30:00Z", "alice"),
        note("assigned to @bob", "2026-11-01T11:40:00Z", "bob", system=True),
        note("approved this merge request", "2026-11-01T12:00:00Z", "bob", system=True),
        note("nit", "2026-11-01T13:00:00Z", "carol"),
    ]
    record = records.pull_request(mr(), {"notes": notes, "commits": []}, {}, ())
    assert record.first_review_at == datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_first_response_ignores_notes_made_while_the_mr_was_a_draft() -> None:
    notes = [
        note("early thoughts", "2026-11-01T10:00:00Z", "carol"),  # on the draft: nobody waited yet
        note("approved this merge request", "2026-11-01T10:30:00Z", "bob", system=True),  # also early
        note("marked this merge request as **ready**", "2026-11-01T12:00:00Z", "alice", system=True),
        note("deploy preview", "2026-11-01T12:01:00Z", "netlify[bot]"),
        note("one question", "2026-11-01T12:00:00Z", "dave"),  # a comment the second it became ready
    ]
    record = records.pull_request(mr(), {"notes": notes, "commits": []}, {}, ())
    assert record.ready_at == record.first_review_at == datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_merged_mr_is_closed_when_merged_and_the_squash_commit_wins() -> None:
    merged = mr(merged_at="2026-11-03T09:00:00Z", merge_commit_sha="m" * 40, squash_commit_sha="s" * 40)
    record = records.pull_request(merged, {}, {}, ())
    assert record.closed_at == record.merged_at == datetime(2026, 11, 3, 9, tzinfo=UTC)
    assert record.merge_commit_sha == "s" * 40
    assert record.ready_at == record.created_at and record.first_commit_at is None


@pytest.mark.parametrize("title", ["Draft: Fix login", "[Draft] Fix login", "(Draft) Fix login", "WIP: Fix login"])
def test_draft_marker_leaves_the_title(title: str) -> None:
    record = records.pull_request(mr(title=title, draft=True), {}, {}, ())
    assert (record.title, record.draft) == ("Fix login", True)


def test_reverts_by_gitlab_description_or_title() -> None:
    by_body = mr(title='Revert "Fix login"', description="This reverts merge request !42")
    assert records.pull_request(by_body, {}, {}, ()).reverts_number == 42
    by_title = mr(title='Revert "Add cache"', source_branch="revert-8f4c1a2b")
    assert records.pull_request(by_title, {}, {"Add cache": 12}, ()).reverts_number == 12


@pytest.mark.parametrize(
    "login, listed, expected",
    [
        ("renovate[bot]", (), True),
        ("project_42_bot_3f2a", (), True),
        ("group_7_bot", (), True),
        ("service_account_6018816a18e515214e0c34c2b33523fc", (), True),  # GitLab's names for them
        ("service_account_group_345_6018816a18e515214e0c34c2b33523fc", (), True),
        ("service-account-fan", (), False),
        ("release-robot", ("release-robot",), True),
        ("alice", (), False),
        (None, (), False),
    ],
)
def test_bots(login: str | None, listed: tuple[str, ...], expected: bool) -> None:
    assert records.is_bot({"username": login}, listed) is expected


@pytest.mark.parametrize(
    "status, mapped, finished",
    [
        ("created", "queued", False),
        ("running", "in_progress", False),
        ("success", "success", True),
        ("failed", "failure", True),
        ("canceled", "cancelled", False),
        ("blocked", "pending", False),
    ],
)
def test_deployment_statuses(status: str, mapped: str, finished: bool) -> None:
    data = {
        "id": 41,
        "status": status,
        "environment": {"name": "production"},
        "sha": "a" * 40,
        "ref": "main",
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-01T10:05:00Z",
        "deployable": None,
    }
    record = records.deployment(data)
    assert record.status == mapped and record.source == "environments"
    assert record.finished_at == (datetime(2026, 11, 1, 10, 5, tzinfo=UTC) if finished else None)


def test_incident_links_only_mr_references() -> None:
    body = "See #12 (an issue). Caused by !34, deployed as 99d03678b9."
    record = records.incident(
        {
            "iid": 3,
            "issue_type": "incident",
            "title": "Outage",
            "description": body,
            "created_at": "2026-11-01T10:00:00Z",
            "closed_at": None,
            "labels": [],
        }
    )
    assert (record.linked_pr, record.linked_sha, record.source) == (34, "99d03678b9", "gitlab-incidents")


def test_pipeline_without_timings_keeps_none() -> None:
    run = records.pipeline_run(
        {"id": 5, "status": "running", "source": "push", "ref": "main", "created_at": "2026-11-01T10:00:00Z"}, {}
    )
    assert (run.name, run.conclusion, run.duration_seconds, run.started_at) == ("push", None, None, None)
