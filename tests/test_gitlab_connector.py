"""The GitLab connector through the real python-gitlab against the sandbox on loopback.

Expected values come from the seeded dataset (what the sandbox serves), never from the
connector's own output: each record is checked field by field against its source.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devmetrics.config import GitLabSource, SyncSection
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.models import Repository
from devmetrics.sandbox.dataset import Dataset, Repo, first_response
from devmetrics.sandbox.gitlab_bodies import username
from devmetrics.sandbox.server import Sandbox

APP = "acme/platform/app"
CLI = "acme/platform/tools/cli"
MS = timedelta(milliseconds=1)  # GitLab's timestamps keep milliseconds


def connector(sandbox: Sandbox, projects: list[str], prefix: str = "/gitlab", **source: Any) -> GitLabConnector:
    config = GitLabSource(url=sandbox.url + prefix, projects=projects, **source)
    return GitLabConnector(config, SyncSection(max_wait=5, retries=2, timeout=10), "glpat-secret-token")


def repository(name: str) -> Repository:
    return Repository(forge="gitlab", host="sandbox", full_name=name, default_branch="main")


def fetch_all(conn: GitLabConnector, name: str, stream: str, since: datetime | None = None) -> list[Any]:
    return [record for batch in conn.fetch(repository(name), stream, since) for record in batch.records]


def close(actual: datetime | None, expected: datetime | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return abs(actual - expected) < MS


def source_repo(data: Dataset, name: str) -> Repo:
    repo = data.repo("gitlab", name)
    assert repo is not None
    return repo


# ---------------------------------------------------------------------------- projects


def test_group_wildcard_includes_subgroups(gitlab_sandbox: Sandbox) -> None:
    repos = connector(gitlab_sandbox, ["acme/*"]).list_repos()
    assert sorted(r.full_name for r in repos) == [APP, CLI]
    assert all(r.forge == "gitlab" and r.default_branch == "main" for r in repos)


def test_subgroup_wildcard_and_explicit_project_are_not_repeated(gitlab_sandbox: Sandbox) -> None:
    repos = connector(gitlab_sandbox, ["acme/platform/tools/*", CLI, APP]).list_repos()
    assert [r.full_name for r in repos] == [CLI, APP]
    assert repos[1].url == f"{gitlab_sandbox.url}/gitlab/{APP}"


def test_archived_projects_only_when_configured() -> None:
    from devmetrics.sandbox.dataset import RepoPlan, build_dataset
    from devmetrics.sandbox.gitlab import GitLabApp
    from devmetrics.sandbox.server import serving

    plans = (RepoPlan("gitlab", "acme/live", prs=2), RepoPlan("gitlab", "acme/old/attic", prs=2, archived=True))
    with serving([("/gitlab", GitLabApp(build_dataset(plans=plans)))]) as sandbox:
        default = connector(sandbox, ["acme/*"]).list_repos()
        everything = connector(sandbox, ["acme/*"], include_archived=True).list_repos()
    assert [r.full_name for r in default] == ["acme/live"]
    assert sorted(r.full_name for r in everything) == ["acme/live", "acme/old/attic"]
    assert [r.archived for r in everything if r.full_name == "acme/old/attic"] == [True]


# ---------------------------------------------------------------------------- merge requests


def test_merge_requests_match_the_dataset(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    records = {r.number: r for r in fetch_all(connector(gitlab_sandbox, [APP]), APP, "merge_requests")}
    pulls = source_repo(gitlab_dataset, APP).pulls
    assert sorted(records) == sorted(p.number for p in pulls)
    for pull in pulls:
        record = records[pull.number]
        assert record.author == username(pull.author)  # GitLab's name for a dataset bot
        assert (record.author_is_bot, record.draft) == (pull.author_is_bot, pull.draft)
        assert record.title == pull.title  # "Draft: " is GitLab's marker, not the title
        assert close(record.first_commit_at, min(c.authored_at for c in pull.commits))
        # approvals and user notes (reviews, conversation comments) by others, once out of draft
        assert close(record.first_review_at, first_response(pull))
        assert close(record.ready_at, pull.ready_at or pull.created_at)
        assert close(record.merged_at, pull.merged_at) and close(record.closed_at, pull.closed_at)
        assert record.merge_commit_sha == pull.merge_commit_sha  # squashed ones included
        assert (record.base_branch, record.head_branch, record.labels) == (pull.base, pull.head, pull.labels)


def test_squashed_bot_draft_and_revert_cases_are_present(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    """The dataset has each tricky case, so the field-by-field test above covers them."""
    pulls = source_repo(gitlab_dataset, APP).pulls
    records = {r.number: r for r in fetch_all(connector(gitlab_sandbox, [APP]), APP, "merge_requests")}
    assert any(p.merged_at and p.number % 5 == 0 for p in pulls)  # served as squash commits
    assert any(p.author_is_bot for p in pulls) and any(p.ready_at for p in pulls)  # ready: a system note
    revert = next(p for p in pulls if p.title.startswith('Revert "'))
    target = int(revert.body.rsplit("#", 1)[1])
    assert records[revert.number].reverts_number == target


def test_a_draft_keeps_its_title_without_the_marker(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    draft = next(p for p in source_repo(gitlab_dataset, CLI).pulls if p.draft)
    records = {r.number: r for r in fetch_all(connector(gitlab_sandbox, [CLI]), CLI, "merge_requests")}
    assert (records[draft.number].draft, records[draft.number].title) == (True, draft.title)


def test_merge_requests_come_in_pages_oldest_change_first(gitlab_sandbox: Sandbox) -> None:
    batches = list(connector(gitlab_sandbox, [APP]).fetch(repository(APP), "merge_requests", None))
    assert len(batches) == 2  # 111 MRs, 100 a page
    assert batches[0].cursor is not None and batches[1].cursor is not None
    assert batches[0].cursor <= batches[1].cursor
    assert gitlab_sandbox.counts["gitlab:GET /api/v4/projects/{id}/merge_requests"] == 2


def test_incremental_resync_from_the_cursor_returns_nothing_new(gitlab_sandbox: Sandbox) -> None:
    conn = connector(gitlab_sandbox, [APP])
    for stream in ("merge_requests", "deployments", "pipelines", "incidents"):
        batches = list(conn.fetch(repository(APP), stream, None))
        cursor = max(b.cursor for b in batches if b.cursor)
        first = {_key(r) for b in batches for r in b.records}
        again = fetch_all(conn, APP, stream, since=cursor)
        # updated_after is inclusive: at most the records at the cursor itself come back
        assert {_key(r) for r in again} <= first, stream
        assert len(again) < 3, stream


def _key(record: Any) -> str:
    return str(
        getattr(record, "number", None)
        or getattr(record, "deployment_id", None)
        or getattr(record, "run_id", None)
        or record.incident_id
    )


def test_merge_request_cost_is_a_list_page_plus_one_query_per_ten(gitlab_sandbox: Sandbox) -> None:
    conn = connector(gitlab_sandbox, [APP])
    fetch_all(conn, APP, "merge_requests")
    # 111 MRs: 2 REST pages + ceil(100/10) + ceil(11/10) GraphQL queries
    assert conn.request_count() == 2 + 10 + 2
    assert gitlab_sandbox.requests("gitlab:POST /api/graphql") == 12


# ---------------------------------------------------------------------------- other streams


def test_deployments_with_mapped_statuses(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    records = {r.deployment_id: r for r in fetch_all(connector(gitlab_sandbox, [APP]), APP, "deployments")}
    deployments = source_repo(gitlab_dataset, APP).deployments
    assert sorted(records) == sorted(str(d.id) for d in deployments)
    mapping = {
        "success": "success",
        "inactive": "success",
        "failure": "failure",
        "error": "failure",
        "in_progress": "in_progress",
        "queued": "queued",
    }
    for dep in deployments:
        record = records[str(dep.id)]
        real = [s for s in dep.statuses if s.state != "inactive"]
        assert record.status == mapping[real[-1].state]
        assert (record.environment, record.sha, record.source) == (dep.environment, dep.sha, "environments")
        ended = next((s.at for s in real if s.state in ("success", "failure", "error")), None)
        assert close(record.finished_at, ended)


def test_deployments_page_by_updated_at(gitlab_sandbox: Sandbox) -> None:
    """GitLab answers 400 to updated_after without order_by=updated_at: both are sent."""
    probe = gitlab_sandbox.faults.add(
        path=r"/deployments\?.*order_by=updated_at.*updated_after=2026-10-01T00%3A00%3A00Z", times=None
    )  # matches only, changes nothing
    records = fetch_all(connector(gitlab_sandbox, [APP]), APP, "deployments", since=datetime(2026, 10, 1, tzinfo=UTC))
    assert records and probe.hits == gitlab_sandbox.requests("gitlab:GET /api/v4/projects/{id}/deployments") >= 1


def test_pipelines_with_durations(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    conn = connector(gitlab_sandbox, [APP])
    records = {r.run_id: r for r in fetch_all(conn, APP, "pipelines")}
    runs = source_repo(gitlab_dataset, APP).runs
    assert sorted(records) == sorted(str(r.id) for r in runs)
    for run in runs:
        record = records[str(run.id)]
        assert record.conclusion == run.conclusion and record.branch == run.branch
        assert record.name == {"pull_request": "merge_request_event"}.get(run.event, run.event)
        if run.status == "completed":
            assert record.duration_seconds == int((run.updated_at - run.started_at).total_seconds())
            assert close(record.started_at, run.started_at) and close(record.finished_at, run.updated_at)
    pages, finished = -(-len(runs) // 100), sum(r.status == "completed" for r in runs)
    assert conn.request_count() <= pages + -(-finished // 25) + pages  # lists + timing queries
    assert gitlab_sandbox.requests("gitlab:GET /api/v4/projects/{id}/pipelines/") == 0  # no GET per pipeline


def test_releases_newest_first_stop_at_since(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    conn = connector(gitlab_sandbox, [APP])
    releases = [r for r in source_repo(gitlab_dataset, APP).releases if not r.draft]
    records = fetch_all(conn, APP, "releases")
    assert sorted(r.tag for r in records) == sorted(r.tag for r in releases)
    assert {r.tag: r.sha for r in records} == {r.tag: r.sha for r in releases}
    newest = max(r.published_at for r in releases if r.published_at)
    assert [r.tag for r in fetch_all(conn, APP, "releases", since=newest - MS)] == [
        r.tag for r in releases if r.published_at == newest
    ]


def test_incidents_by_type_and_label_once_each(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    records = fetch_all(connector(gitlab_sandbox, [APP], incident_labels=["incident", "sev1"]), APP, "incidents")
    issues = [i for i in source_repo(gitlab_dataset, APP).issues if i.incident]
    assert sorted(r.incident_id for r in records) == sorted(str(i.number) for i in issues)
    assert {r.source for r in records} == {"gitlab-incidents"}
    by_id = {r.incident_id: r for r in records}
    for issue in issues:
        assert close(by_id[str(issue.number)].resolved_at, issue.closed_at)
    named = next(i for i in issues if "Caused by #" in i.body)
    assert by_id[str(named.number)].linked_pr == int(named.body.split("#")[1].rstrip("."))
    deployed = next(i for i in issues if "after deploying" in i.body)
    assert by_id[str(deployed.number)].linked_sha == deployed.body.rsplit(" ", 1)[1].rstrip(".")


def test_labelled_issues_count_as_incidents(gitlab_sandbox: Sandbox) -> None:
    records = fetch_all(connector(gitlab_sandbox, [APP], incident_labels=["enhancement"]), APP, "incidents")
    assert sorted({r.source for r in records}) == ["gitlab-incidents", "gitlab-issues"]
    assert sum(r.source == "gitlab-issues" for r in records) == 3


# ---------------------------------------------------------------------------- repository


def test_compare_list_files_and_read_file(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    conn, repo = connector(gitlab_sandbox, [APP]), source_repo(gitlab_dataset, APP)
    base, head = repo.main_line[10].sha, repo.main_line[15].sha
    assert conn.compare(repository(APP), base, head) == [c.sha for c in repo.main_line[11:16]]
    assert sorted(conn.list_files(repository(APP))) == sorted(repo.files)
    assert conn.read_file(repository(APP), "node/package.json") == repo.files["node/package.json"].encode()


def test_self_managed_base_url_under_another_prefix(gitlab_dataset: Dataset) -> None:
    from devmetrics.sandbox.gitlab import GitLabApp
    from devmetrics.sandbox.server import serving

    with serving([("/git.example.com", GitLabApp(gitlab_dataset))]) as sandbox:
        conn = connector(sandbox, ["acme/*"], prefix="/git.example.com")
        repos = conn.list_repos()
        records = fetch_all(conn, CLI, "merge_requests")
    assert sorted(r.full_name for r in repos) == [APP, CLI]
    assert len(records) == len(source_repo(gitlab_dataset, CLI).pulls)
    assert all(r.url.startswith(f"{sandbox.url}/git.example.com/{CLI}/-/merge_requests/") for r in records)
    assert conn.source_key == f"gitlab:{sandbox.url.split('//')[1]}"


def test_a_ca_bundle_reaches_both_clients(gitlab_sandbox: Sandbox) -> None:
    import certifi

    conn = connector(gitlab_sandbox, [APP], ca_bundle=certifi.where())
    assert conn._gl.ssl_verify == certifi.where()  # requests: verify=<path>
    assert conn.list_repos()  # plain http on loopback still works
