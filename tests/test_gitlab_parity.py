"""A GitLab project gives the same records and report keys as a GitHub repo (issue 4, "done when").

Both forges are served from the same dataset by one sandbox, and synced by the real
connectors through sync.py into one store, as `devmetrics sync` does.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel

from devmetrics import store
from devmetrics.config import GitHubSource, GitLabSource, SyncSection, parse_config
from devmetrics.connectors.github import GitHubConnector
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.models import Deployment, Incident, PipelineRun, PullRequest, Release, Repository
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import Dataset
from devmetrics.sync import SyncOptions, run_sync

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
