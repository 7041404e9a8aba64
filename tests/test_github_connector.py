"""The GitHub connector, through the real PyGithub, against the sandbox on loopback."""

from __future__ import annotations

from datetime import datetime, timedelta
from math import ceil
from typing import Any

import pytest
from github_helpers import NOW, connect, records, repo_record, sec

from devmetrics.sandbox.dataset import Dataset, DeploymentStatus, RepoPlan, build_dataset, first_response
from devmetrics.sandbox.github import GitHubApp
from devmetrics.sandbox.server import Sandbox, serving

# --------------------------------------------------------------------------- repositories

def test_org_wildcard_leaves_out_archived_repos_and_forks(sandbox: Sandbox) -> None:
    names = {r.full_name for r in connect(sandbox).list_repos()}
    assert names == {"acme/api", "acme/web"}  # acme/legacy is archived, acme/forked-lib a fork


def test_org_wildcard_keeps_them_when_configured(sandbox: Sandbox) -> None:
    connector = connect(sandbox, include_archived=True, include_forks=True)
    repos = {r.full_name: r for r in connector.list_repos()}
    assert set(repos) == {"acme/api", "acme/web", "acme/legacy", "acme/forked-lib"}
    assert repos["acme/legacy"].archived and repos["acme/forked-lib"].fork
    assert repos["acme/api"].default_branch == "main" and repos["acme/api"].host == sandbox.url.split("//")[1]


def test_explicit_repo_and_user_wildcard(sandbox: Sandbox) -> None:
    # /orgs/acme/repos answering 404 means acme is a user: the connector asks /users/acme/repos.
    sandbox.faults.add(path=r"/orgs/acme/repos", status=404, body={"message": "Not Found"})
    names = [r.full_name for r in connect(sandbox, repos=["acme/legacy", "acme/*"]).list_repos()]
    assert names == ["acme/legacy", "acme/api", "acme/web"]
    assert sandbox.requests("github:GET /users/{owner}/repos") == 1


# ---------------------------------------------------------------------------- pull requests

def test_pull_requests_carry_every_field_from_one_query(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    before = connector.request_count()
    pulls, _ = records(connector.fetch(repo, "pull_requests", None))
    source = dataset.repo("github", "acme/api")
    assert source is not None and len(pulls) == len(source.pulls) == 141
    assert connector.request_count() - before == ceil(141 / 100)  # no per-PR calls
    by_number = {p.number: p for p in pulls}
    for expected in source.pulls:
        check_pull(by_number[expected.number], expected)
    # the dataset holds the cases that decide the first response, so the check above saw them
    ready = {p.number: p.ready_at or p.created_at for p in source.pulls}
    answered_by_comment = [p for p in source.pulls if first_response(p) in {c.created_at for c in p.comments}]
    answered_in_draft = [p for p in source.pulls if any(c.created_at < ready[p.number] for c in p.comments)]
    assert len(answered_by_comment) >= 10 and len(answered_in_draft) >= 5


def test_a_thousand_pull_requests_with_reviews_and_comments_cost_one_query_per_hundred() -> None:
    plan = RepoPlan("github", "big/app", prs=1000, environments=False, releases=0, incidents=0)
    big = build_dataset(now=NOW, plans=(plan,))
    with serving([("/github", GitHubApp(big))]) as sandbox:
        connector = connect(sandbox, repos=["big/app"])
        repo = repo_record(connector, "big/app")
        before = connector.request_count()
        pulls, cursor = records(connector.fetch(repo, "pull_requests", None))
        first = connector.request_count() - before
        records(connector.fetch(repo, "pull_requests", cursor))
        again = connector.request_count() - before - first
    # 1,001 PRs (with the revert): ceil(1,001 / 100) = 11 queries, comments riding along with the
    # reviews (the budget is 60); nothing new: one query
    assert (len(pulls), first, again) == (1001, 11, 1)
    got = {p.number: p.first_review_at for p in pulls}
    assert got == {p.number: sec(first_response(p)) for p in big.repos[0].pulls}


def check_pull(got: Any, expected: Any) -> None:
    assert (got.author, got.author_is_bot, got.draft) == (expected.author, expected.author_is_bot, expected.draft)
    assert got.created_at == sec(expected.created_at) and got.merged_at == sec(expected.merged_at)
    assert got.ready_at == sec(expected.ready_at or expected.created_at)
    assert got.first_commit_at == sec(min(c.authored_at for c in expected.commits))
    # reviews and conversation comments by humans other than the author, once out of draft
    assert got.first_review_at == sec(first_response(expected))
    assert (got.merge_commit_sha, got.base_branch, got.head_branch) == (
        expected.merge_commit_sha, expected.base, expected.head)
    assert got.labels == expected.labels and got.updated_at == sec(expected.updated_at)


def test_a_revert_names_the_pull_request_it_reverts(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    pulls, _ = records(connector.fetch(repo_record(connector, "acme/api"), "pull_requests", None))
    reverts = [p for p in pulls if p.reverts_number]
    assert len(reverts) == 1 and reverts[0].title.startswith('Revert "')
    assert reverts[0].reverts_number in {p.number for p in pulls}


def test_pull_requests_page_past_three_pages() -> None:
    big = build_dataset(now=NOW, plans=(RepoPlan("github", "big/service", prs=350, environments=False),))
    with serving([("/github", GitHubApp(big))]) as sandbox:
        connector = connect(sandbox, repos=["big/service"])
        repo = repo_record(connector, "big/service")
        batches = list(connector.fetch(repo, "pull_requests", None))
        numbers = [p.number for b in batches for p in b.records]
        assert len(batches) == 4 and len(set(numbers)) == 351  # 350 + the revert PR
        assert sandbox.requests("github:POST /graphql") == 4  # ceil(351 / 100)


# ------------------------------------------------------------------------ incremental sync

@pytest.mark.parametrize("stream", ["pull_requests", "deployments", "workflow_runs", "releases", "incidents"])
def test_a_second_fetch_from_the_cursor_costs_one_request(sandbox: Sandbox, stream: str) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    first, cursor = records(connector.fetch(repo, stream, NOW - timedelta(days=90)))
    assert first and cursor is not None
    before = connector.request_count()
    again, _ = records(connector.fetch(repo, stream, cursor))
    assert connector.request_count() - before <= 1
    field = next(s.cursor_field for s in connector.streams if s.name == stream)
    assert all(_cursor_value(r, field) <= cursor for r in again)  # nothing new: at most the cursor's own


def _cursor_value(record: Any, field: str) -> datetime:
    return getattr(record, field, None) or record.created_at


def test_pull_requests_stop_at_the_cursor(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    since = NOW - timedelta(days=20)
    pulls, _ = records(connector.fetch(repo_record(connector, "acme/api"), "pull_requests", since))
    source = dataset.repo("github", "acme/api")
    assert source is not None
    assert {p.number for p in pulls} == {p.number for p in source.pulls if sec(p.updated_at) >= since}


# ------------------------------------------------------------------------------ deployments

def test_deployments_with_latest_status_and_finish_time(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    deployments, _ = records(connector.fetch(repo_record(connector, "acme/api"), "deployments", None))
    source = dataset.repo("github", "acme/api")
    assert source is not None and len(deployments) == len(source.deployments)
    by_id = {d.deployment_id: d for d in deployments}
    for expected in source.deployments:
        got = by_id[str(expected.id)]
        ends = [s.at for s in expected.statuses if s.state in ("success", "failure", "error")]
        assert (got.environment, got.sha, got.status) == (expected.environment, expected.sha,
                                                          expected.statuses[-1].state)
        assert got.finished_at == sec(min(ends) if ends else None) and got.source == "environments"


def test_a_late_status_change_is_picked_up_by_the_lookback(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    source = dataset.repo("github", "acme/api")
    assert source is not None
    newest = source.deployments[-1]
    newest.statuses = newest.statuses[:2]  # queued, in_progress: still running at the first sync
    first, cursor = records(connector.fetch(repo, "deployments", NOW - timedelta(days=90)))
    assert {d.deployment_id: d.status for d in first}[str(newest.id)] == "in_progress"
    finished = newest.created_at + timedelta(minutes=9)
    newest.statuses.append(DeploymentStatus("success", finished))
    assert cursor is not None
    again, _ = records(connector.fetch(repo, "deployments", cursor - timedelta(days=3)))
    updated = {d.deployment_id: d for d in again}[str(newest.id)]
    assert (updated.status, updated.finished_at) == ("success", sec(finished))


# ---------------------------------------------------------------------------- workflow runs

def test_workflow_runs_fields_and_durations(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    runs, _ = records(connector.fetch(repo_record(connector, "acme/web"), "workflow_runs", None))
    source = dataset.repo("github", "acme/web")
    assert source is not None and len(runs) == len(source.runs)
    by_id = {r.run_id: r for r in runs}
    for expected in source.runs:
        got = by_id[str(expected.id)]
        assert (got.name, got.path, got.branch, got.event) == (expected.workflow, expected.path,
                                                               expected.branch, expected.event)
        if expected.status == "completed":
            assert got.duration_seconds == (sec(expected.updated_at) - sec(expected.started_at)).total_seconds()
        else:
            assert got.finished_at is None and got.duration_seconds is None


def test_workflow_runs_split_the_range_under_the_1000_cap() -> None:
    busy = build_dataset(now=NOW, plans=(RepoPlan("github", "busy/ci", prs=400, environments=False),))
    source = busy.repos[0]
    with serving([("/github", app := GitHubApp(busy))]) as sandbox:
        connector = connect(sandbox, repos=["busy/ci"])
        repo = repo_record(connector, "busy/ci")
        before = connector.request_count()
        runs, _ = records(connector.fetch(repo, "workflow_runs", NOW - timedelta(days=120)))
        spent = connector.request_count() - before
    assert len(source.runs) > 2000  # so one listing could not hold them
    assert sorted(r.run_id for r in runs) == sorted(str(r.id) for r in source.runs)
    assert app.capped == 0  # no request asked past the 1,000th result
    windows = ceil(len(source.runs) / 1000)
    assert spent <= ceil(len(source.runs) / 100) + windows


# -------------------------------------------------------------------- releases, incidents

def test_releases(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    releases, _ = records(connector.fetch(repo_record(connector, "acme/api"), "releases", None))
    source = dataset.repo("github", "acme/api")
    assert source is not None
    newest_first = sorted(source.releases, key=lambda r: r.created_at, reverse=True)
    assert [(r.tag, r.draft, r.prerelease, r.sha) for r in releases] == [
        (r.tag, r.draft, r.prerelease, r.sha) for r in newest_first]


def test_incidents_are_labelled_issues_with_their_links(sandbox: Sandbox, dataset: Dataset) -> None:
    # (a per-repo override must not get in the way of the source's incident labels)
    connector = connect(sandbox, incident_labels=["incident", "sev1"], overrides={"acme/api": {"workflow": "CI"}})
    incidents, _ = records(connector.fetch(repo_record(connector, "acme/api"), "incidents", None))
    source = dataset.repo("github", "acme/api")
    assert source is not None
    expected = [i for i in source.issues if "incident" in i.labels]
    assert sorted(i.incident_id for i in incidents) == sorted(str(i.number) for i in expected)  # no duplicates
    by_id = {i.incident_id: i for i in incidents}
    for issue in expected:
        got = by_id[str(issue.number)]
        assert (got.created_at, got.resolved_at, got.labels) == (sec(issue.created_at), sec(issue.closed_at),
                                                                 issue.labels)
    assert sum(1 for i in incidents if i.linked_pr) == 1 and sum(1 for i in incidents if i.linked_sha) == 1


def test_the_issues_endpoint_lists_pull_requests_too_and_they_are_left_out(sandbox: Sandbox) -> None:
    connector = connect(sandbox, incident_labels=["hotfix"])  # a label only PRs carry here
    incidents, _ = records(connector.fetch(repo_record(connector, "acme/api"), "incidents", None))
    assert incidents == []


# -------------------------------------------------------------- compare, files, enterprise

def test_compare_list_files_and_read_file(sandbox: Sandbox, dataset: Dataset) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    source = dataset.repo("github", "acme/api")
    assert source is not None
    base, head = source.main_line[2].sha, source.main_line[-1].sha
    assert connector.compare(repo, base, head) == [c.sha for c in source.main_line[3:]]
    assert sorted(connector.list_files(repo)) == sorted(source.files)
    assert connector.read_file(repo, "requirements.txt").decode() == source.files["requirements.txt"]


def test_enterprise_base_url_uses_api_v3_and_api_graphql(sandbox: Sandbox) -> None:
    connector = connect(sandbox, path="/github/api/v3")
    repo = repo_record(connector, "acme/api")
    pulls, _ = records(connector.fetch(repo, "pull_requests", None))
    runs, _ = records(connector.fetch(repo, "workflow_runs", NOW - timedelta(days=5)))
    assert len(pulls) == 141 and runs
    paths = {target.split("?")[0] for _, target, _ in sandbox.log}
    assert "/github/api/graphql" in paths
    assert all(p.startswith("/github/api/") for p in paths)
