"""The records of metrics.md §1 as sqlmodel tables.

Connectors build instances of these classes as plain records (they never open a session);
`store.upsert` writes them. Every table has its natural key as a unique constraint, and
every time is a UTC-aware datetime (see `UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 6


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns UTC-aware datetimes on every backend.

    SQLite keeps no offset and would silently hand back naive times; PostgreSQL keeps
    timestamptz. A naive datetime is refused: it is always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(**kwargs: Any) -> Any:
    """A nullable UTC datetime column."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True), **kwargs)


def json_field() -> Any:
    """A JSON list column (labels)."""
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int
    applied_at: datetime | None = utc_field()


class Repository(SQLModel, table=True):
    __tablename__ = "repository"
    __table_args__ = (UniqueConstraint("forge", "host", "full_name"),)
    id: int | None = Field(default=None, primary_key=True)
    forge: str  # "github" | "gitlab"
    host: str  # github.com, gitlab.com, or the self-managed / Enterprise host
    full_name: str  # owner/name, or group/subgroup/project
    default_branch: str | None = None
    url: str | None = None
    archived: bool = False
    fork: bool = False
    # Which signal counted deployments at the last sync (metrics.md §3): environments,
    # workflow, releases, merges, or none when no signal had any data.
    deployment_signal: str | None = None
    synced_at: datetime | None = utc_field()


class PullRequest(SQLModel, table=True):
    __tablename__ = "pull_request"
    __table_args__ = (UniqueConstraint("repo_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    number: int
    title: str = ""
    url: str | None = None
    author: str | None = None
    author_is_bot: bool = False
    draft: bool = False
    created_at: datetime | None = utc_field()
    ready_at: datetime | None = utc_field()  # last time it left draft, else created_at
    first_commit_at: datetime | None = utc_field()  # earliest authored date of its commits
    # First response by a human not the author, at or after ready_at: a review, approval,
    # review comment or conversation comment (GitLab: a user note). Its rule changed in schema
    # v3 (contract revision 2026-12-01); store.py's v3 step has older rows re-read.
    first_review_at: datetime | None = utc_field()
    merged_at: datetime | None = utc_field()
    closed_at: datetime | None = utc_field()
    updated_at: datetime | None = utc_field()
    merge_commit_sha: str | None = None
    base_branch: str | None = None
    head_branch: str | None = None
    labels: list[str] = json_field()
    # The PR this one reverts, when its title, head branch or body says so (links.py).
    reverts_number: int | None = None


class Deployment(SQLModel, table=True):
    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("repo_id", "source", "deployment_id"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    source: str  # environments | workflow | releases | merges
    deployment_id: str
    environment: str | None = None
    sha: str | None = None
    ref: str | None = None
    url: str | None = None
    created_at: datetime | None = utc_field()
    finished_at: datetime | None = utc_field()  # first success / failure / error status
    # success, failure, error, inactive, in_progress, queued, pending, cancelled
    status: str | None = None
    updated_at: datetime | None = utc_field()


class DeploymentCommit(SQLModel, table=True):
    """A commit shipped by a deployment: the compare range previous..this deployment."""

    __tablename__ = "deployment_commit"
    __table_args__ = (UniqueConstraint("repo_id", "source", "deployment_id", "sha"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    source: str
    deployment_id: str
    sha: str = Field(index=True)


class Release(SQLModel, table=True):
    __tablename__ = "release"
    __table_args__ = (UniqueConstraint("repo_id", "release_id"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    release_id: str
    tag: str | None = None
    name: str | None = None
    sha: str | None = None
    url: str | None = None
    draft: bool = False
    prerelease: bool = False
    created_at: datetime | None = utc_field()
    published_at: datetime | None = utc_field()


class PipelineRun(SQLModel, table=True):
    __tablename__ = "pipeline_run"
    __table_args__ = (UniqueConstraint("repo_id", "run_id"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    run_id: str
    name: str | None = None  # workflow name / GitLab pipeline source
    path: str | None = None  # workflow file, when the forge has one
    branch: str | None = None
    sha: str | None = None
    event: str | None = None
    status: str | None = None
    conclusion: str | None = None  # success, failure, cancelled, skipped, ...
    url: str | None = None
    created_at: datetime | None = utc_field()
    started_at: datetime | None = utc_field()
    finished_at: datetime | None = utc_field()
    duration_seconds: float | None = None


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (UniqueConstraint("repo_id", "source", "incident_id"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    source: str  # issues (GitHub labelled issues), gitlab-incidents, gitlab-issues
    incident_id: str
    title: str = ""
    url: str | None = None
    created_at: datetime | None = utc_field()
    resolved_at: datetime | None = utc_field()
    labels: list[str] = json_field()
    linked_sha: str | None = None  # a commit sha named in the body
    linked_pr: int | None = None  # a PR/MR number named in the body


class Dependency(SQLModel, table=True):
    __tablename__ = "dependency"
    __table_args__ = (UniqueConstraint("repo_id", "manifest_path", "ecosystem", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    manifest_path: str
    ecosystem: str
    name: str
    spec: str | None = None
    current_version: str | None = None
    current_released_at: datetime | None = utc_field()
    latest_version: str | None = None
    latest_released_at: datetime | None = utc_field()
    resolution: str | None = None  # lock | pin | range-max | unconstrained
    direct: bool = True
    majors_behind: int | None = None
    libyears: float | None = None
    status: str = "ok"  # ok | unsupported | unknown
    evaluated_at: datetime | None = utc_field()


class DependencySnapshot(SQLModel, table=True):
    """A repo's dependency_freshness summary at one evaluation (metrics.md §6): its history."""

    __tablename__ = "dependency_snapshot"
    __table_args__ = (UniqueConstraint("repo_id", "taken_at"),)
    id: int | None = Field(default=None, primary_key=True)
    repo_id: int | None = Field(default=None, foreign_key="repository.id", index=True)
    taken_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    dependencies: int = 0
    outdated: int = 0
    major_behind: int = 0
    more_than_one_major_behind: int = 0
    libyears: float | None = None
    libyears_max: float | None = None
    unsupported: int = 0
    unknown: int = 0


class PackageInfo(SQLModel, table=True):
    """Registry cache: a package's latest version, refreshed at most daily (deps/cache.py)."""

    __tablename__ = "package_info"
    __table_args__ = (UniqueConstraint("ecosystem", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    ecosystem: str
    name: str
    latest_version: str | None = None  # npm dist-tags.latest, Go @latest; else None
    # False when the registry gave only some versions (Go: @latest plus .info look-ups).
    complete: bool = True
    fetched_at: datetime | None = utc_field()


class PackageVersion(SQLModel, table=True):
    """Registry cache: one published version; its release date never changes."""

    __tablename__ = "package_version"
    __table_args__ = (UniqueConstraint("ecosystem", "name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    ecosystem: str
    name: str
    version: str
    released_at: datetime | None = utc_field()
    yanked: bool = False  # yanked (PyPI, crates.io) or deprecated (npm)


class PackageFailure(SQLModel, table=True):
    """Registry cache of failed look-ups (deps/cache.py): not asked again within a TTL."""

    __tablename__ = "package_failure"
    __table_args__ = (UniqueConstraint("ecosystem", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    ecosystem: str
    name: str
    registry_url: str  # the base URL asked (no credentials): a failure at another URL says nothing
    reason: str  # the look-up's error, e.g. "HTTP 404 for https://pypi.org/pypi/gone/json"
    failed_at: datetime | None = utc_field()


class DigestFigure(SQLModel, table=True):
    """A figure as a digest posted it (digest/history.py), so the next digest can say which
    past weeks' figures have since been revised (late reviews, incidents resolved later)."""

    __tablename__ = "digest_figure"
    __table_args__ = (UniqueConstraint("repo", "week", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    repo: str  # full name, or "all" for the aggregate
    week: str  # ISO week, "2026-W47"
    key: str  # comparison key, "lead_time_hours.median"
    value: float | None = None
    posted_at: datetime | None = utc_field()


class TargetWeek(SQLModel, table=True):
    """A target's status and alert state on one repo in one ISO week (targets.py, §9)."""

    __tablename__ = "target_week"
    __table_args__ = (UniqueConstraint("target", "repo", "week"),)
    id: int | None = Field(default=None, primary_key=True)
    target: str  # the target's name
    repo: str  # full name
    week: str  # ISO week, "2026-W47"
    status: str  # met | breached | few events | no data (the week on its own)
    value: float | None = None
    state: str  # ok | alerting, after breach_after / recover_after
    since: str  # the ISO week the state began
    event: str | None = None  # "breach" on the week it turned alerting, "recover" when it turned ok
    evaluated_at: datetime | None = utc_field()


class SyncState(SQLModel, table=True):
    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("source", "repo", "stream"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str  # forge instance, e.g. github:github.com
    repo: str  # full name
    stream: str
    cursor: datetime | None = utc_field()
    lookback_seconds: int = 0
    last_success_at: datetime | None = utc_field()


# The natural key of each record table, used by store.upsert (ON CONFLICT target).
NATURAL_KEYS: dict[type[SQLModel], tuple[str, ...]] = {
    Repository: ("forge", "host", "full_name"),
    PullRequest: ("repo_id", "number"),
    Deployment: ("repo_id", "source", "deployment_id"),
    DeploymentCommit: ("repo_id", "source", "deployment_id", "sha"),
    Release: ("repo_id", "release_id"),
    PipelineRun: ("repo_id", "run_id"),
    Incident: ("repo_id", "source", "incident_id"),
    Dependency: ("repo_id", "manifest_path", "ecosystem", "name"),
    SyncState: ("source", "repo", "stream"),
    DependencySnapshot: ("repo_id", "taken_at"),
    PackageInfo: ("ecosystem", "name"),
    PackageVersion: ("ecosystem", "name", "version"),
    PackageFailure: ("ecosystem", "name"),
    DigestFigure: ("repo", "week", "key"),
    TargetWeek: ("target", "repo", "week"),
}
