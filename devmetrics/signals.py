"""Which records count as production deployments for a repo (metrics.md §3).

The signal is chosen per repo at sync time and remembered on the Repository row:
`environments` (the forge's deployments API), `workflow` (runs of a named CI workflow on
the default branch), `releases` (published, non-draft, non-prerelease), `merges` (every PR
merged into the default branch), or `auto`: the first of those that has data. Sources other
than `environments` are turned into Deployment rows here, so the calculator reads one table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from devmetrics.models import Deployment, PipelineRun, PullRequest, Release, Repository

SUCCESS = frozenset({"success", "inactive"})  # inactive: superseded by a later deployment
FAILED = frozenset({"failure", "error"})
AUTO_ORDER = ("environments", "workflow", "releases", "merges")

# GitHub Actions conclusions / GitLab pipeline statuses → deployment statuses.
RUN_STATUS = {"success": "success", "failure": "failure", "failed": "failure",
              "timed_out": "failure", "startup_failure": "error", "cancelled": "cancelled",
              "canceled": "cancelled", "skipped": "cancelled", "action_required": "pending"}


def is_production(source: str, environment: str | None, pattern: str) -> bool:
    """Environments decide by name; the other signals are production by definition.

    An empty pattern matches nothing: it never means "everything is production".
    """
    if source != "environments":
        return True
    return bool(pattern) and environment is not None and re.search(pattern, environment) is not None


def choose_signal(conn: Connection, repo: Repository, wanted: str, pattern: str,
                  workflow: str | None) -> str | None:
    """The configured signal, or for `auto` the first with data (None: no signal has any)."""
    if wanted != "auto":
        return wanted
    for signal in AUTO_ORDER:
        if signal == "workflow" and not workflow:
            continue
        if _has_data(conn, repo, signal, pattern, workflow):
            return signal
    return None


def _has_data(conn: Connection, repo: Repository, signal: str, pattern: str, workflow: str | None) -> bool:
    if signal == "workflow" and _stored_workflow(conn, repo):
        return True
    return any(True for _ in _candidates(conn, repo, signal, pattern, workflow, limit=1))


def _stored_workflow(conn: Connection, repo: Repository) -> bool:
    """Whether the connector stored workflow deployments itself.

    GitLab reads the deploy job's runs straight into Deployment rows (its pipelines carry no
    workflow name to derive them from); GitHub's are derived from PipelineRun rows below. A
    repo's rows come from one forge, so a derived and a stored row never share the natural
    key (repo_id, source, deployment_id): neither overwrites the other.
    """
    table = Deployment.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.id).where(table.c.repo_id == repo.id, table.c.source == "workflow").limit(1)
    return conn.execute(query).first() is not None


def derived_deployments(conn: Connection, repo: Repository, signal: str,
                        workflow: str | None) -> list[Deployment]:
    """Deployment rows for a signal that is not the deployments API itself.

    For `workflow`, only those derived from PipelineRun rows (GitHub): GitLab's deploy jobs
    are already stored as Deployment rows, and writing them again would only cost time.
    """
    if signal == "environments":
        return []
    return list(_candidates(conn, repo, signal, "", workflow))


def _candidates(conn: Connection, repo: Repository, signal: str, pattern: str,
                workflow: str | None, limit: int | None = None) -> Iterable[Deployment]:
    if signal == "environments":
        return _environment_deployments(conn, repo, pattern, limit)
    if signal == "workflow":
        return (_from_run(row, repo) for row in _rows(conn, _workflow_runs(repo, workflow), limit))
    if signal == "releases":
        return (_from_release(row, repo) for row in _rows(conn, _published_releases(repo), limit))
    return (_from_merge(row, repo) for row in _rows(conn, _merged_prs(repo), limit))


def _rows(conn: Connection, query: sa.Select[Any], limit: int | None) -> list[Any]:
    return list(conn.execute(query.limit(limit) if limit else query))


def _environment_deployments(conn: Connection, repo: Repository, pattern: str,
                             limit: int | None) -> Iterable[Deployment]:
    table = Deployment.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.environment).where(
        table.c.repo_id == repo.id, table.c.source == "environments").distinct()
    names = [row.environment for row in conn.execute(query)]
    return [Deployment(source="environments", deployment_id=name or "")
            for name in names if is_production("environments", name, pattern)][:limit]


def _workflow_runs(repo: Repository, workflow: str | None) -> sa.Select[Any]:
    table = PipelineRun.__table__  # type: ignore[attr-defined]
    named = sa.or_(table.c.name == workflow, table.c.path == workflow,
                   table.c.path.like(f"%/{workflow}"))
    return sa.select(table).where(table.c.repo_id == repo.id, named,
                                  table.c.branch == repo.default_branch)


def _published_releases(repo: Repository) -> sa.Select[Any]:
    table = Release.__table__  # type: ignore[attr-defined]
    return sa.select(table).where(table.c.repo_id == repo.id, table.c.published_at.is_not(None),
                                  sa.not_(table.c.draft), sa.not_(table.c.prerelease))


def _merged_prs(repo: Repository) -> sa.Select[Any]:
    table = PullRequest.__table__  # type: ignore[attr-defined]
    return sa.select(table).where(table.c.repo_id == repo.id, table.c.merged_at.is_not(None),
                                  table.c.base_branch == repo.default_branch)


def _from_run(run: Any, repo: Repository) -> Deployment:
    status = RUN_STATUS.get(run.conclusion or "", "in_progress" if run.status != "completed" else "error")
    finished = run.finished_at if status in SUCCESS | FAILED else None
    return Deployment(repo_id=repo.id, source="workflow", deployment_id=str(run.run_id),
                      environment="production", sha=run.sha, ref=run.branch, url=run.url,
                      created_at=run.started_at or run.created_at, finished_at=finished,
                      status=status, updated_at=run.finished_at or run.created_at)


def _from_release(release: Any, repo: Repository) -> Deployment:
    return Deployment(repo_id=repo.id, source="releases", deployment_id=str(release.release_id),
                      environment="production", sha=release.sha, ref=release.tag, url=release.url,
                      created_at=release.published_at, finished_at=release.published_at,
                      status="success", updated_at=release.published_at)


def _from_merge(pull: Any, repo: Repository) -> Deployment:
    return Deployment(repo_id=repo.id, source="merges", deployment_id=str(pull.number),
                      environment="production", sha=pull.merge_commit_sha, ref=repo.default_branch,
                      url=pull.url, created_at=pull.merged_at, finished_at=pull.merged_at,
                      status="success", updated_at=pull.merged_at)


def successful_production(conn: Connection, repo: Repository, signal: str,
                          pattern: str) -> list[Any]:
    """Successful production deployments of the signal, oldest first (for compare ranges)."""
    table = Deployment.__table__  # type: ignore[attr-defined]
    query = sa.select(table).where(
        table.c.repo_id == repo.id, table.c.source == signal, table.c.status.in_(SUCCESS),
        table.c.finished_at.is_not(None)).order_by(table.c.finished_at, table.c.deployment_id)
    return [row for row in conn.execute(query) if is_production(signal, row.environment, pattern)]
