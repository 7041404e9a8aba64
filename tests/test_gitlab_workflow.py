"""The `workflow` deployment signal on GitLab: runs of a named CI job on the default branch.

The real python-gitlab against the sandbox on loopback. The sandbox serves each dataset run
as a pipeline with one job named after its workflow, lower-cased ("Deploy" → "deploy");
expected values come from the dataset, never from the connector's own output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gitlab
import pytest
from conftest import TEST_NOW

from devmetrics import store
from devmetrics.config import GitLabSource, SyncSection, parse_config
from devmetrics.connectors import gitlab_records
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.models import Deployment, Repository
from devmetrics.sandbox.dataset import Dataset, RepoPlan, WorkflowRun, build_dataset
from devmetrics.sandbox.gitlab import GitLabApp
from devmetrics.sandbox.gitlab_bodies import job_id
from devmetrics.sandbox.server import Sandbox, serving
from devmetrics.sync import SyncOptions, run_sync

NOW = TEST_NOW
PROJECT = "acme/deploys"
JOBS = "gitlab:GET /api/v4/projects/{id}/jobs"
MS = timedelta(milliseconds=1)  # GitLab's timestamps keep milliseconds
STATUS = {"success": "success", "failure": "failure", "cancelled": "cancelled"}  # run conclusion → deployment


@pytest.fixture(scope="module")
def data() -> Dataset:
    plan = RepoPlan("gitlab", PROJECT, prs=30, environments=False, deploy_workflow="Deploy", releases=0, incidents=0)
    return build_dataset(now=NOW, plans=(plan,))


@pytest.fixture
def server(data: Dataset) -> Iterator[Sandbox]:
    with serving([("/gitlab", GitLabApp(data))]) as sandbox:
        yield sandbox


def connector(sandbox: Sandbox, **source: Any) -> GitLabConnector:
    config = GitLabSource(url=sandbox.url + "/gitlab", projects=[PROJECT], **source)
    return GitLabConnector(config, SyncSection(max_wait=5, retries=2, timeout=10), "glpat-secret-token")


def repository() -> Repository:
    return Repository(forge="gitlab", host="sandbox", full_name=PROJECT, default_branch="main")


def deploy_jobs(conn: GitLabConnector, since: datetime | None = None) -> list[Any]:
    return [record for batch in conn.fetch(repository(), "deploy_jobs", since) for record in batch.records]


def finished_deploys(data: Dataset) -> list[WorkflowRun]:
    """What GitLab lists: the Deploy runs on main that ran to an end (not skipped, not running)."""
    repo = data.repo("gitlab", PROJECT)
    assert repo is not None
    return [r for r in repo.runs if r.workflow == "Deploy" and r.branch == "main" and r.conclusion in STATUS]


def close(actual: datetime | None, expected: datetime | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return abs(actual - expected) < MS


# ---------------------------------------------------------------------------- the stream


def test_deploy_jobs_are_the_named_jobs_on_the_default_branch(data: Dataset, server: Sandbox) -> None:
    records = {d.deployment_id: d for d in deploy_jobs(connector(server, workflow="deploy"))}
    runs = {str(job_id(r)): r for r in finished_deploys(data)}
    assert records.keys() == runs.keys()
    for key, run in runs.items():
        got = records[key]
        assert (got.source, got.environment, got.ref, got.sha) == ("workflow", "production", "main", run.sha)
        assert got.status == STATUS[run.conclusion or ""]
        assert close(got.created_at, run.created_at)
        assert close(got.finished_at, run.updated_at if got.status in ("success", "failure") else None)
        assert got.url and got.url.endswith(f"/{PROJECT}/-/jobs/{key}")
    assert {d.status for d in records.values()} >= {"success", "failure"}


def test_jobs_of_other_branches_are_not_deployments(server: Sandbox) -> None:
    # Lint runs on the merge requests' branches: the name matches, the ref does not.
    assert deploy_jobs(connector(server, workflow="lint")) == []
    assert server.requests(JOBS) > 0


def test_a_per_project_override_names_the_job(server: Sandbox) -> None:
    conn = connector(server, workflow="ci", overrides={PROJECT: {"workflow": "deploy"}})
    assert deploy_jobs(conn)


def test_one_request_per_100_finished_jobs_and_a_stop_at_the_cursor(data: Dataset, server: Sandbox) -> None:
    repo = data.repo("gitlab", PROJECT)
    assert repo is not None
    finished = [r for r in repo.runs if r.conclusion in STATUS]  # scope[]: success, failed, canceled
    conn = connector(server, workflow="deploy")
    deploy_jobs(conn)
    assert server.requests(JOBS) == math.ceil(len(finished) / 100) > 1

    server.reset_counts()
    since = NOW - timedelta(days=5)
    recent = deploy_jobs(conn, since)
    assert server.requests(JOBS) == 1  # the newest page already reaches back past `since`
    assert sorted(d.deployment_id for d in recent) == sorted(
        str(job_id(r)) for r in finished_deploys(data) if r.created_at >= since
    )


def test_the_batch_cursor_covers_every_job_read(data: Dataset, server: Sandbox) -> None:
    """Also jobs of other names: the next sync stops there even when no deploy ran since."""
    batches = list(connector(server, workflow="no-such-job").fetch(repository(), "deploy_jobs", None))
    repo = data.repo("gitlab", PROJECT)
    assert repo is not None
    newest = max(r.created_at for r in repo.runs if r.conclusion in STATUS)
    assert all(not b.records for b in batches)
    assert close(max(b.cursor for b in batches if b.cursor), newest)


def test_no_workflow_configured_costs_no_request(server: Sandbox) -> None:
    assert deploy_jobs(connector(server)) == []
    assert server.requests() == 0


# ---------------------------------------------------------------------------- records


@pytest.mark.parametrize(
    ("gitlab_status", "status", "finished"),
    [
        ("success", "success", True),
        ("failed", "failure", True),
        ("canceled", "cancelled", False),
        ("running", "in_progress", False),
        ("created", "queued", False),
        ("pending", "queued", False),
        ("skipped", "cancelled", False),
        ("manual", "pending", False),
    ],
)
def test_job_status_in_the_deployment_vocabulary(gitlab_status: str, status: str, finished: bool) -> None:
    job = {
        "id": 7,
        "name": "deploy-prod",
        "status": gitlab_status,
        "ref": "main",
        "created_at": "2015-12-24T15:51:21.802Z",
        "started_at": "2015-12-24T17:54:27.722Z",
        "finished_at": "2015-12-24T17:54:27.895Z",
        "commit": {"id": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd"},
        "web_url": "https://example.com/foo/bar/-/jobs/7",
    }
    record = gitlab_records.deploy_job(job)
    assert (record.source, record.deployment_id, record.status) == ("workflow", "7", status)
    assert record.sha == "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd"
    assert record.finished_at == (datetime(2015, 12, 24, 17, 54, 27, 895000, tzinfo=UTC) if finished else None)


# ---------------------------------------------------------------------------- sandbox


def test_sandbox_serves_a_pipelines_job_and_filters_by_scope(data: Dataset, server: Sandbox) -> None:
    client = gitlab.Gitlab(server.url + "/gitlab", private_token="sandbox-token")
    project = client.projects.get(PROJECT, lazy=True)
    run = finished_deploys(data)[0]
    jobs = project.pipelines.get(run.id, lazy=True).jobs.list(get_all=True)
    assert [(j.id, j.name, j.pipeline["id"]) for j in jobs] == [(job_id(run), "deploy", run.id)]
    failed = project.jobs.list(scope=["failed"], get_all=True)
    assert failed and {j.status for j in failed} == {"failed"}


# ---------------------------------------------------------------------------- through sync


def synced_report(sandbox: Sandbox, tmp_path: Path, **source: Any) -> tuple[Any, dict[str, Any]]:
    from devmetrics.report import build_report, settings_from_config

    gitlab_source = {"url": f"{sandbox.url}/gitlab", "token_env": "SANDBOX_TOKEN", "projects": [PROJECT], **source}
    config = parse_config({"database": {"url": f"sqlite:///{tmp_path}/dm.db"}, "gitlab": [gitlab_source]})
    engine = store.open_engine(config.database.url)
    result = run_sync(config, engine, SyncOptions(deps=False))
    assert not result.failures, result.failures
    report = build_report(engine, settings_from_config(config), NOW.date() - timedelta(days=28), NOW.date())
    return result, {row["repo"]: row for row in report["repos"]}[PROJECT]


@pytest.mark.parametrize("signal", ["workflow", "auto"])
def test_sync_counts_the_deploy_jobs_as_deployments(
    server: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal: str
) -> None:
    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token")
    _, row = synced_report(server, tmp_path, deployments=signal, workflow="deploy")
    assert row["deployment_signal"] == "workflow"
    assert row["deployments"] and row["deployments"] > 0


def test_sync_without_a_workflow_reads_no_jobs(
    server: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token")
    _, row = synced_report(server, tmp_path)
    assert server.requests(JOBS) == 0
    assert row["deployment_signal"] != "workflow"


def test_stored_rows_are_the_only_workflow_deployments(
    server: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: Dataset
) -> None:
    """Nothing derived from GitLab pipelines joins them (pipelines carry no job name)."""
    import sqlalchemy as sa

    monkeypatch.setenv("SANDBOX_TOKEN", "sandbox-token")
    synced_report(server, tmp_path, deployments="workflow", workflow="deploy")
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with engine.connect() as conn:
        table = Deployment.__table__  # type: ignore[attr-defined]
        ids = {row.deployment_id for row in conn.execute(sa.select(table).where(table.c.source == "workflow"))}
    since = NOW - timedelta(days=SyncSection().since_days)
    assert ids == {str(job_id(r)) for r in finished_deploys(data) if r.created_at >= since}
