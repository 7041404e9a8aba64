"""A GitLab project gives the same records and report keys as a GitHub repo (issue 4, "done when"),
and the same stored rows through GraphQL as through REST alone (issue 17, item 6).

Both forges are served from the same dataset by one sandbox, and synced by the real
connectors through sync.py into one store, as `devmetrics sync` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import GITLAB_NOW
from sqlmodel import SQLModel

from devmetrics import store
from devmetrics.config import Config, GitHubSource, GitLabSource, SyncSection, parse_config
from devmetrics.connectors.base import Connector
from devmetrics.connectors.github import GitHubConnector
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.models import Deployment, Incident, PipelineRun, PullRequest, Release, Repository
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import Commit, Dataset, RepoPlan, build_dataset, first_response
from devmetrics.sandbox.gitlab_bodies import BOT_USERS, username
from devmetrics.sandbox.server import Sandbox
from devmetrics.sync import SyncOptions, build_connector, run_sync

# Fields one forge has and the other has not, by design (documented in docs/gitlab.md).
FORGE_ONLY = {
    PipelineRun: {"path"},  # a GitHub workflow file; GitLab pipelines have no file of their own
}


def filled(records: list[SQLModel]) -> set[str]:
    """The fields that carry a value in at least one record."""
    return {
        key
        for record in records
        for key, value in record.model_dump().items()
        if value not in (None, "", []) and key not in ("id", "repo_id")
    }


def first_records(conn: Any, repo: Repository, model: type[SQLModel]) -> list[SQLModel]:
    stream = next(s for s in conn.streams if s.model is model)
    return [r for batch in conn.fetch(repo, stream.name, None) for r in batch.records]


@pytest.mark.parametrize("model", [PullRequest, Deployment, PipelineRun, Release, Incident])
def test_same_record_fields_as_github(gitlab_dataset: Dataset, model: type[SQLModel]) -> None:
    sandbox, _ = build_sandbox(gitlab_dataset)
    with sandbox:
        github = GitHubConnector(
            GitHubSource(api_url=f"{sandbox.url}/github", repos=["acme/api"]), SyncSection(), "sandbox-token"
        )
        gitlab = GitLabConnector(
            GitLabSource(url=f"{sandbox.url}/gitlab", projects=["acme/platform/app"]), SyncSection(), "sandbox-token"
        )
        gh_repo, gl_repo = github.list_repos()[0], gitlab.list_repos()[0]
        gh, gl = first_records(github, gh_repo, model), first_records(gitlab, gl_repo, model)
    allowed = FORGE_ONLY.get(model, set())
    assert gh and gl
    assert filled(gh) - allowed == filled(gl) - allowed


def test_report_has_the_same_keys_for_a_gitlab_project(
    gitlab_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devmetrics.report import build_report, settings_from_config

    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token")
    sandbox, _ = build_sandbox(gitlab_dataset)
    with sandbox:
        config = parse_config(
            {
                "database": {"url": f"sqlite:///{tmp_path}/dm.db"},
                "github": [{"api_url": f"{sandbox.url}/github", "token_env": "SANDBOX_TOKEN", "repos": ["acme/api"]}],
                "gitlab": [{"url": f"{sandbox.url}/gitlab", "token_env": "SANDBOX_TOKEN", "projects": ["acme/*"]}],
            }
        )
        engine = store.open_engine(config.database.url)
        result = run_sync(config, engine, SyncOptions(deps=False))
    assert not result.failures, result.failures
    until = gitlab_dataset.now.date()
    report = build_report(engine, settings_from_config(config), until - timedelta(days=28), until)
    rows = {row["repo"]: row for row in report["repos"]}
    github, gitlab = rows["acme/api"], rows["acme/platform/app"]
    assert (github["forge"], gitlab["forge"]) == ("github", "gitlab")
    assert set(gitlab) == set(github)
    assert gitlab["deployment_signal"] == "environments"
    for key in (
        "deployments",
        "lead_time_hours",
        "cycle_time_hours",
        "pipeline_duration_minutes",
        "incidents",
        "pull_requests_merged",
    ):
        assert gitlab[key] is not None and github[key] is not None, key
    # Work in progress comes from the PRs the sync stored (open ones ride in the same
    # listing): the dataset's open, non-draft, non-bot PRs into main at until, among those
    # updated since the first sync's reach (since_days, 90 by default)
    at = datetime.combine(until, datetime.min.time(), UTC)
    reach = gitlab_dataset.now - timedelta(days=SyncSection().since_days)
    for forge, name, row in (("github", "acme/api", github), ("gitlab", "acme/platform/app", gitlab)):
        repo = gitlab_dataset.repo(forge, name)
        assert repo is not None
        expected = [
            p for p in repo.pulls
            if p.created_at < at and not (p.merged_at and p.merged_at < at) and not (p.closed_at and p.closed_at < at)
            and not p.draft and not p.author_is_bot and p.base == repo.default_branch and p.updated_at >= reach
        ]
        assert expected, name
        assert row["open_pull_requests"] == len(expected), name
        assert row["open_pull_request_age_hours"]["n"] == len(expected), name


def test_second_sync_reads_only_the_lookback_window(gitlab_dataset: Dataset, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Through sync.py: cursors from the connector's batches; the next sync re-reads 3 days only."""
    import sqlalchemy as sa

    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token")
    sandbox, _ = build_sandbox(gitlab_dataset)
    with sandbox:
        config = parse_config({
            "database": {"url": f"sqlite:///{tmp_path}/dm.db"},
            "gitlab": [{"url": f"{sandbox.url}/gitlab", "token_env": "SANDBOX_TOKEN", "projects": ["acme/*"]}],
        })
        engine = store.open_engine(config.database.url)
        first = run_sync(config, engine, SyncOptions(deps=False))
        with engine.connect() as conn:
            rows = {m: conn.execute(sa.select(sa.func.count()).select_from(m.__table__)).scalar()  # type: ignore[attr-defined]
                    for m in (PullRequest, Deployment, PipelineRun, Incident)}
        second = run_sync(config, engine, SyncOptions(deps=False))
        with engine.connect() as conn:
            again = {m: conn.execute(sa.select(sa.func.count()).select_from(m.__table__)).scalar()  # type: ignore[attr-defined]
                     for m in rows}
    assert not first.failures and not second.failures
    assert again == rows  # nothing new, nothing doubled
    assert second.requests < first.requests / 5, (first.requests, second.requests)
    assert sum(s.records for s in second.streams) < sum(s.records for s in first.streams) / 5


# ------------------------------------------------------------------ GraphQL and REST alone

# Columns that say when a sync ran, not what it read: any two syncs differ in them.
RUN_TIME = {"schema_version": {"applied_at"}, "sync_state": {"last_success_at"}, "repository": {"synced_at"},
            "dependency": {"evaluated_at"}, "dependency_snapshot": {"taken_at"},
            "package_info": {"fetched_at"}, "package_failure": {"failed_at"}}


def stored_rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, without the RUN_TIME columns."""
    rows = {}
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == set(SQLModel.metadata.tables)
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in RUN_TIME.get(table.name, set())]
            rows[table.name] = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(*table.primary_key))]
    return rows


def rest_only(config: Config, source: Any) -> Connector:
    """The connector `devmetrics sync` builds, with GraphQL switched off."""
    token = source.token(config.source_key(source), config.path)
    return GitLabConnector(source, config.sync, token, tuple(config.report.bots), graphql=False)


def test_graphql_and_rest_store_the_same_rows(gitlab_dataset: Dataset, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token-1234")
    sandbox, registries = build_sandbox(gitlab_dataset)
    synced = {}
    with sandbox:
        for path, factory in (("graphql", build_connector), ("rest", rest_only)):
            config = parse_config({
                "database": {"url": f"sqlite:///{tmp_path}/{path}.db"}, "registries": registries,
                "gitlab": [{"url": f"{sandbox.url}/gitlab", "token_env": "SANDBOX_TOKEN", "projects": ["acme/*"]}],
            })
            engine = store.open_engine(config.database.url)
            result = run_sync(config, engine, SyncOptions(deps=True), connector_factory=factory)
            assert not result.failures, result.failures
            synced[path] = stored_rows(engine)
        graphql_posts = sandbox.requests("gitlab:POST /api/graphql")
    assert graphql_posts > 0  # the first sync did read its details through GraphQL
    graphql, rest = synced["graphql"], synced["rest"]
    assert {name: len(rows) for name, rows in rest.items()} == {name: len(rows) for name, rows in graphql.items()}
    for name in graphql:
        assert rest[name] == graphql[name], name
    # Teeth: the rows hold each kind of bot, named or known only by the user API's `bot`.
    pulls = [dict(zip(PullRequest.model_fields, row, strict=False)) for row in graphql["pull_request"]]
    bot_authors = {p["author"] for p in pulls if p["author_is_bot"]}
    assert {username("dependabot[bot]"), username("renovate[bot]")} <= bot_authors <= BOT_USERS
    assert not any(p["author_is_bot"] for p in pulls if p["author"] not in BOT_USERS)


def test_codecov_comments_are_a_bots_through_rest_too(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    """A service account its owner named `codecov-reporter`: only the user API says it is a bot."""
    repo = gitlab_dataset.repo("gitlab", "acme/platform/app")
    assert repo is not None
    commented = [p for p in repo.pulls if any(r.author == "codecov[bot]" for r in p.reviews)]
    source = GitLabSource(url=f"{gitlab_sandbox.url}/gitlab", projects=["acme/platform/app"])
    conn = GitLabConnector(source, SyncSection(), "token", graphql=False)
    records = {r.number: r for r in first_records(conn, conn.list_repos()[0], PullRequest)}
    for pull in commented:
        expected, got = first_response(pull), records[pull.number].first_review_at
        assert (got is None and expected is None) or abs(got - expected) < timedelta(milliseconds=1), pull.number
    assert commented
    # Once per account not known as a bot by its name: the six people and codecov-reporter,
    # however many MRs and notes they have.
    assert gitlab_sandbox.requests("gitlab:GET /api/v4/users/{id}") == 7


def test_a_user_the_api_will_not_show_counts_as_a_person(gitlab_sandbox: Sandbox) -> None:
    """A deleted user (GitLab's ghost) or one hidden by the instance's visibility: 404 / 403."""
    hidden = gitlab_sandbox.faults.add(path="/gitlab/api/v4/users/", status=404, times=None)
    source = GitLabSource(url=f"{gitlab_sandbox.url}/gitlab", projects=["acme/platform/tools/cli"])
    conn = GitLabConnector(source, SyncSection(), "token", graphql=False)
    records = first_records(conn, conn.list_repos()[0], PullRequest)
    assert records and not any(r.author_is_bot for r in records if r.author not in BOT_USERS)
    assert hidden.hits > 0


def test_rest_reads_an_mrs_commits_100_a_page() -> None:
    """GitLab pages MR commits by 20 unless asked for more: 45 commits were 3 requests."""
    from devmetrics.sandbox.gitlab import GitLabApp
    from devmetrics.sandbox.server import serving

    data = build_dataset(now=GITLAB_NOW, plans=(RepoPlan("gitlab", "acme/app", prs=4, environments=False,
                                                          releases=0, incidents=0),))
    pull = data.repos[0].pulls[0]
    start = pull.commits[0].authored_at
    pull.commits += [Commit(f"{n:040x}", f"Step {n}", pull.author, start + timedelta(minutes=n)) for n in range(45)]
    with serving([("/gitlab", GitLabApp(data))]) as sandbox:
        source = GitLabSource(url=f"{sandbox.url}/gitlab", projects=["acme/app"])
        conn = GitLabConnector(source, SyncSection(), "token", graphql=False)
        records = {r.number: r for r in first_records(conn, conn.list_repos()[0], PullRequest)}
        commits = sandbox.requests("gitlab:GET /api/v4/projects/{id}/merge_requests/{iid}/commits")
    assert commits == 4  # one page each, the 46-commit MR included
    first = min(c.authored_at for c in pull.commits)
    assert records[pull.number].first_commit_at == first.replace(microsecond=first.microsecond // 1000 * 1000)
