"""Rate limits and faults: waiting within sync.max_wait, giving up cleanly, retrying 5xx,
empty repositories, GraphQL errors reported, and the token never shown."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from github_helpers import TOKEN, connect, records, repo_record
from timeline import early_requests, github_budget

from devmetrics.config import SyncSection
from devmetrics.connectors.github import GitHubConnector
from devmetrics.errors import ForgeError, RateLimitExhausted
from devmetrics.models import Repository
from devmetrics.sandbox.github import GitHubApp
from devmetrics.sandbox.server import Sandbox

SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}


@pytest.mark.parametrize("status", [403, 429])
def test_retry_after_is_honoured(sandbox: Sandbox, status: int) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/releases", status=status, body=SECONDARY, headers={"Retry-After": "1"})
    before, started = connector.request_count(), time.monotonic()
    releases, _ = records(connector.fetch(repo, "releases", None))
    assert len(releases) == 6 and time.monotonic() - started >= 1.0
    assert connector.request_count() - before == 2  # the refused request and its retry


def test_a_retry_after_beyond_max_wait_stops_with_the_retry_time(sandbox: Sandbox) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=5))
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/releases", status=403, body=SECONDARY, headers={"Retry-After": "600"})
    with pytest.raises(RateLimitExhausted) as raised:
        records(connector.fetch(repo, "releases", None))
    assert "acme/api releases" in str(raised.value) and "retry after" in str(raised.value)


@pytest.mark.parametrize(("resource", "stream", "expected"),
                         [("core", "releases", 6), ("graphql", "pull_requests", 141)])
def test_a_budget_resetting_soon_is_waited_for(sandbox: Sandbox, github_app: GitHubApp, resource: str,
                                               stream: str, expected: int) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=30))
    repo = repo_record(connector, "acme/api")
    github_app.exhaust(resource, reset_in=1)
    found, _ = records(connector.fetch(repo, stream, None))
    assert len(found) == expected


def test_primary_limit_beyond_max_wait_raises_naming_repo_stream_and_time(
        sandbox: Sandbox, github_app: GitHubApp) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=60))
    repo = repo_record(connector, "acme/api")
    github_app.exhaust("core", reset_in=3600)
    with pytest.raises(RateLimitExhausted) as raised:
        records(connector.fetch(repo, "workflow_runs", None))
    reset = datetime.fromtimestamp(github_app.budgets["core"].reset, UTC)
    assert raised.value.retry_at == reset
    assert "acme/api workflow_runs" in str(raised.value) and f"{reset:%H:%M:%S}" in str(raised.value)


def test_graphql_budget_gone_raises_for_pull_requests(sandbox: Sandbox, github_app: GitHubApp) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=60))
    repo = repo_record(connector, "acme/api")
    github_app.exhaust("graphql", reset_in=3600)
    with pytest.raises(RateLimitExhausted, match="acme/api pull_requests"):
        records(connector.fetch(repo, "pull_requests", None))
    releases, _ = records(connector.fetch(repo, "releases", None))  # the core budget is separate
    assert releases


def test_server_errors_are_retried(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/graphql", status=502, times=2)
    pulls, _ = records(connector.fetch(repo, "pull_requests", None))
    assert len(pulls) == 141


def test_server_errors_past_the_retries_are_reported(sandbox: Sandbox) -> None:
    connector = connect(sandbox, sync=SyncSection(retries=1))
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/issues", status=503, times=None)
    with pytest.raises(ForgeError, match="acme/api incidents: GitHub answered 503"):
        records(connector.fetch(repo, "incidents", None))


def test_an_empty_repository_has_no_records(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    empty = {"message": "Git Repository is empty.", "documentation_url": "https://docs.github.com/rest"}
    sandbox.faults.add(path=r"/actions/runs|/git/trees", status=409, body=empty, times=None)
    assert records(connector.fetch(repo, "workflow_runs", None)) == ([], None)
    assert connector.list_files(repo) == []


def test_graphql_partial_errors_are_raised_not_swallowed(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    partial = {"data": {"repository": None}, "errors": [
        {"message": "Something went wrong while executing your query.", "path": ["repository"]}]}
    sandbox.faults.add(path=r"/graphql", status=200, body=partial)
    with pytest.raises(ForgeError, match="Something went wrong while executing your query"):
        records(connector.fetch(repo, "pull_requests", None))


def test_a_missing_repository_is_reported(sandbox: Sandbox) -> None:
    connector = connect(sandbox, repos=["acme/nope"])
    with pytest.raises(ForgeError, match="acme/nope repositories: GitHub answered 404"):
        connector.list_repos()


def test_the_token_never_shows(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox, sync=SyncSection(retries=1))
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/releases", status=401, body={"message": f"Bad credentials {TOKEN}"})
    with pytest.raises(ForgeError) as raised:
        records(connector.fetch(repo, "releases", None))
    sandbox.faults.add(path=r"/graphql", status=500, times=None)
    with pytest.raises(ForgeError) as again:
        records(connector.fetch(repo, "pull_requests", None))
    shown = [str(raised.value), repr(raised.value), str(again.value), caplog.text]
    assert "401" in shown[0] and not any(TOKEN in text for text in shown)


def test_an_unreachable_forge_is_one_clear_error(sandbox: Sandbox) -> None:
    connector = connect(sandbox, sync=SyncSection(retries=0, timeout=2))
    sandbox.stop()
    with pytest.raises(ForgeError, match="cannot reach"):
        connector.list_repos()


def test_deployments_lookback_window_is_reread(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    repo = repo_record(connector, "acme/api")
    _, cursor = records(connector.fetch(repo, "deployments", None))
    assert cursor is not None
    again, _ = records(connector.fetch(repo, "deployments", cursor - timedelta(days=3)))
    assert again and all(d.created_at >= cursor - timedelta(days=3) for d in again)


# ------------------------------------------------------- the budget honoured before sending

PRIMARY = {"message": "API rate limit exceeded for user ID 1.",
           "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}


def fetch_all(connector: GitHubConnector, repo: Repository, *streams: str) -> dict[str, int]:
    return {stream: len(records(connector.fetch(repo, stream, None))[0]) for stream in streams}


@pytest.mark.parametrize(("resource", "streams", "expected"), [
    ("core", ("releases", "incidents", "workflow_runs"), {"releases": 6, "incidents": 5, "workflow_runs": 846}),
    ("graphql", ("pull_requests",), {"pull_requests": 141}),
])
def test_no_request_is_sent_while_the_budget_is_zero(sandbox: Sandbox, github_app: GitHubApp, resource: str,
                                                      streams: tuple[str, ...], expected: dict[str, int]) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=30))
    repo = repo_record(connector, "acme/api")
    sandbox.reset_counts()
    sent = connector.request_count()
    github_app.limit(resource, remaining=1, reset_in=2)  # the first answer says 0 left
    assert fetch_all(connector, repo, *streams) == expected
    assert early_requests(sandbox.timeline, budget=github_budget) == []
    assert [e.status for e in sandbox.timeline if e.status in (403, 429)] == []  # none was refused
    assert connector.request_count() - sent == len(sandbox.timeline) > 1


@pytest.mark.parametrize("status", [403, 429])
def test_a_refused_request_is_retried_after_the_reset_not_before(sandbox: Sandbox, status: int) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=30))
    repo = repo_record(connector, "acme/api")
    sandbox.reset_counts()
    reset = int(time.time()) + 2
    sandbox.faults.add(path=r"/releases", status=status, body=PRIMARY, headers={
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core"})
    assert fetch_all(connector, repo, "releases", "incidents") == {"releases": 6, "incidents": 5}
    assert [e.status for e in sandbox.timeline] == [status, 200, 200]
    assert early_requests(sandbox.timeline, budget=github_budget) == []
    assert sandbox.timeline[1].at >= reset


def test_a_known_empty_budget_past_max_wait_stops_without_sending(sandbox: Sandbox, github_app: GitHubApp) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=5))
    repo = repo_record(connector, "acme/api")
    sandbox.reset_counts()
    github_app.limit("core", remaining=1, reset_in=3600)
    assert fetch_all(connector, repo, "releases") == {"releases": 6}
    started = time.monotonic()
    with pytest.raises(RateLimitExhausted) as raised:
        fetch_all(connector, repo, "incidents")
    assert time.monotonic() - started < 2  # refused at once: waiting would pass max_wait
    reset = datetime.fromtimestamp(github_app.budgets["core"].reset, UTC)
    assert raised.value.retry_at == reset and "acme/api incidents" in str(raised.value)
    assert len(sandbox.timeline) == 1  # the releases page; nothing sent at 0 remaining


def test_a_rate_limited_graphql_answer_waits_for_the_reset(sandbox: Sandbox, github_app: GitHubApp) -> None:
    connector = connect(sandbox, sync=SyncSection(max_wait=30))
    repo = repo_record(connector, "acme/api")
    sandbox.reset_counts()
    github_app.exhaust("graphql", reset_in=2)  # the first query is answered RATE_LIMITED
    assert fetch_all(connector, repo, "pull_requests") == {"pull_requests": 141}
    assert early_requests(sandbox.timeline, budget=github_budget) == []
    assert len(sandbox.timeline) == 3  # the refused query, then the two pages
