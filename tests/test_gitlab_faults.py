"""Faults on the GitLab side: rate limits, 5xx, query complexity, and the token kept secret."""

from __future__ import annotations

import time
from typing import Any

import pytest
from timeline import GITLAB_HEADERS, early_requests

from devmetrics.config import GitLabSource, SyncSection
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.errors import ForgeError, RateLimitExhausted
from devmetrics.models import Repository
from devmetrics.sandbox.gitlab import GitLabApp
from devmetrics.sandbox.server import Sandbox

APP = "acme/platform/app"
CLI = "acme/platform/tools/cli"
TOKEN = "glpat-very-secret-token"
MRS = r"/merge_requests\?"


def connector(sandbox: Sandbox, **sync: Any) -> GitLabConnector:
    source = GitLabSource(url=f"{sandbox.url}/gitlab", projects=[APP, CLI])
    settings = SyncSection(**{"max_wait": 5, "retries": 2, "timeout": 10, **sync})
    return GitLabConnector(source, settings, TOKEN)


def merge_requests(conn: GitLabConnector, name: str = CLI) -> list[Any]:
    repo = Repository(forge="gitlab", host="sandbox", full_name=name, default_branch="main")
    return [r for batch in conn.fetch(repo, "merge_requests", None) for r in batch.records]


def test_a_429_with_retry_after_is_waited_out(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=429, headers={"Retry-After": "1"})
    conn = connector(gitlab_sandbox)
    started = time.monotonic()
    records = merge_requests(conn)
    assert time.monotonic() - started >= 1.0
    assert len(records) == 41
    assert conn.request_count() == 1 + 1 + 5  # the 429, the list page, 5 GraphQL queries


def test_a_429_with_ratelimit_reset_is_waited_out(gitlab_sandbox: Sandbox) -> None:
    reset = str(int(time.time()) + 2)  # python-gitlab sleeps until this epoch second
    gitlab_sandbox.faults.add(path=MRS, status=429, headers={"RateLimit-Reset": reset})
    started = time.monotonic()
    assert len(merge_requests(connector(gitlab_sandbox))) == 41
    assert time.monotonic() - started >= 0.5


def test_rate_limit_past_max_wait_stops_cleanly(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=429, headers={"Retry-After": "60"}, times=None)
    started = time.monotonic()
    with pytest.raises(RateLimitExhausted) as caught:
        merge_requests(connector(gitlab_sandbox, max_wait=30))
    message = str(caught.value)
    assert time.monotonic() - started < 5  # no sleep: 60 s would pass max_wait at once
    assert CLI in message and "merge_requests" in message and "retry after" in message
    assert "max_wait (30 s)" in message and caught.value.retry_at is not None
    assert TOKEN not in message


def test_waits_add_up_to_the_cap(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=429, headers={"Retry-After": "1"}, times=None)
    conn = connector(gitlab_sandbox, max_wait=2)
    started = time.monotonic()
    with pytest.raises(RateLimitExhausted):
        merge_requests(conn)
    assert 2.0 <= time.monotonic() - started < 5  # slept 1 + 1, refused the third
    assert conn.request_count() == 3


def test_graphql_429_is_waited_out(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path="/api/graphql", method="POST", status=429, headers={"Retry-After": "1"})
    assert len(merge_requests(connector(gitlab_sandbox))) == 41


def test_5xx_answers_are_retried(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=502, times=2)
    assert len(merge_requests(connector(gitlab_sandbox, retries=2))) == 41


def test_5xx_past_the_retries_is_a_forge_error(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=503, times=None)
    conn = connector(gitlab_sandbox, retries=2)
    with pytest.raises(ForgeError) as caught:
        merge_requests(conn)
    assert not isinstance(caught.value, RateLimitExhausted)
    assert str(caught.value).endswith(f"{CLI} (merge_requests): HTTP 503 after 2 retries")
    assert conn.request_count() == 3


def test_a_too_complex_query_is_split_to_fit(gitlab_sandbox: Sandbox) -> None:
    """GitLab names the query's complexity and its limit: the next batches are sized to fit."""
    error = {"errors": [{"message": "Query has complexity of 620, which exceeds max complexity of 250"}]}
    gitlab_sandbox.faults.add(path="/api/graphql", method="POST", status=200, body=error)
    records = merge_requests(connector(gitlab_sandbox))
    assert len(records) == 41 and all(r.first_commit_at for r in records)
    # 10 MRs cost 620, so 4 fit in 250: 41 MRs in 11 queries (the refused one is not counted)
    assert gitlab_sandbox.requests("gitlab:POST /api/graphql") == 11


def test_a_complexity_error_without_numbers_halves_the_batch(gitlab_sandbox: Sandbox) -> None:
    error = {"errors": [{"message": "Query is too complex"}]}
    gitlab_sandbox.faults.add(path="/api/graphql", method="POST", status=200, body=error)
    assert len(merge_requests(connector(gitlab_sandbox))) == 41
    assert gitlab_sandbox.requests("gitlab:POST /api/graphql") == 9  # 41 MRs, 5 a query


def test_http_errors_name_the_project_and_never_the_token(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, status=401, body={"message": f"401 Unauthorized {TOKEN}"})
    conn = connector(gitlab_sandbox)
    with pytest.raises(ForgeError) as caught:
        merge_requests(conn)
    assert "HTTP 401" in str(caught.value) and CLI in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(conn)


def test_an_unknown_project_is_a_one_line_error(gitlab_sandbox: Sandbox) -> None:
    source = GitLabSource(url=f"{gitlab_sandbox.url}/gitlab", projects=["acme/nope"])
    with pytest.raises(ForgeError, match=r"acme/nope \(projects\): HTTP 404"):
        GitLabConnector(source, SyncSection(), TOKEN).list_repos()


def test_when_graphql_refuses_even_one_mr_rest_gives_the_same_records(gitlab_sandbox: Sandbox) -> None:
    by_graphql = {r.number: r for r in merge_requests(connector(gitlab_sandbox))}
    error = {"errors": [{"message": "Query has complexity of 260, which exceeds max complexity of 250"}]}
    gitlab_sandbox.faults.add(path="/api/graphql", method="POST", status=200, body=error, times=None)
    gitlab_sandbox.reset_counts()
    conn = connector(gitlab_sandbox)
    by_rest = {r.number: r for r in merge_requests(conn)}
    assert by_rest == by_graphql
    assert gitlab_sandbox.requests("gitlab:GET /api/v4/projects/{id}/merge_requests/{iid}/notes") == 41
    assert gitlab_sandbox.requests("gitlab:GET /api/v4/projects/{id}/merge_requests/{iid}/commits") == 41


def test_pipeline_timings_fall_back_to_a_get_per_pipeline() -> None:
    from devmetrics.sandbox.dataset import RepoPlan, build_dataset
    from devmetrics.sandbox.gitlab import GitLabApp
    from devmetrics.sandbox.server import serving

    data = build_dataset(plans=(RepoPlan("gitlab", APP, prs=4, environments=False),))
    error = {"errors": [{"message": "Query has complexity of 260, which exceeds max complexity of 250"}]}
    with serving([("/gitlab", GitLabApp(data))]) as sandbox:
        sandbox.faults.add(path="/api/graphql", method="POST", status=200, body=error, times=None)
        repo = Repository(forge="gitlab", host="sandbox", full_name=APP, default_branch="main")
        runs = [r for b in connector(sandbox).fetch(repo, "pipelines", None) for r in b.records]
        gets = sandbox.requests("gitlab:GET /api/v4/projects/{id}/pipelines/{pid}")
    expected = {
        str(r.id): int((r.updated_at - r.started_at).total_seconds())
        for r in data.repos[0].runs
        if r.status == "completed"
    }
    assert {r.run_id: r.duration_seconds for r in runs if r.conclusion} == expected
    assert gets == len(expected)


def test_a_malformed_body_is_a_one_line_error(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, malformed=True)
    with pytest.raises(ForgeError) as caught:
        merge_requests(connector(gitlab_sandbox))
    assert str(caught.value).startswith(f"GitLab 127.0.0.1:{gitlab_sandbox.url.rsplit(':', 1)[1]}: {CLI}")
    assert "HTTP None" not in str(caught.value)


def test_dropped_connections_are_retried_then_reported(gitlab_sandbox: Sandbox) -> None:
    gitlab_sandbox.faults.add(path=MRS, reset=True, times=1)
    assert len(merge_requests(connector(gitlab_sandbox))) == 41
    gitlab_sandbox.faults.add(path=MRS, reset=True, times=None)
    with pytest.raises(ForgeError, match=r"connection failed \(\w+\) after 2 retries"):
        merge_requests(connector(gitlab_sandbox, retries=2))


# ------------------------------------------------------- the budget honoured before sending

def gitlab_app(sandbox: Sandbox) -> GitLabApp:
    app = dict(sandbox.apps)["/gitlab"]
    assert isinstance(app, GitLabApp)
    return app


def test_no_request_is_sent_while_the_window_is_used_up(gitlab_sandbox: Sandbox) -> None:
    conn = connector(gitlab_sandbox, max_wait=30)
    gitlab_app(gitlab_sandbox).limit(remaining=1, reset_in=2)  # the first answer says 0 left
    assert len(merge_requests(conn)) == 41
    assert early_requests(gitlab_sandbox.timeline, GITLAB_HEADERS) == []
    assert [e.status for e in gitlab_sandbox.timeline] == [200] * 6  # none refused with 429
    assert conn.request_count() == 6


def test_a_429_is_retried_after_the_reset_even_when_retry_after_is_shorter(gitlab_sandbox: Sandbox) -> None:
    reset = int(time.time()) + 2
    gitlab_sandbox.faults.add(path=MRS, status=429, headers={
        "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset), "Retry-After": "1"})
    assert len(merge_requests(connector(gitlab_sandbox, max_wait=30))) == 41
    assert early_requests(gitlab_sandbox.timeline, GITLAB_HEADERS) == []
    assert gitlab_sandbox.timeline[0].status == 429 and gitlab_sandbox.timeline[1].at >= reset


def test_a_used_up_window_past_max_wait_stops_without_sending(gitlab_sandbox: Sandbox) -> None:
    gitlab_app(gitlab_sandbox).limit(remaining=1, reset_in=3600)
    started = time.monotonic()
    with pytest.raises(RateLimitExhausted) as caught:
        merge_requests(connector(gitlab_sandbox, max_wait=5))
    assert time.monotonic() - started < 3 and "retry after" in str(caught.value)
    assert len(gitlab_sandbox.timeline) == 1  # the list page; nothing sent at 0 remaining
