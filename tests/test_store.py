"""The store: idempotent upserts, UTC times, migrations, PostgreSQL for real."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.models import (
    SCHEMA_VERSION,
    DigestFigure,
    PackageFailure,
    PackageInfo,
    PullRequest,
    Repository,
    SyncState,
    TargetWeek,
)

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def rows(engine: Engine, model: type) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(model.__table__).order_by(model.__table__.c.id))]


def fill(engine: Engine) -> int:
    repo_id = store.save_repository(engine, Repository(forge="github", host="github.com", full_name="acme/api"))
    prs = [PullRequest(repo_id=repo_id, number=n, title=f"PR {n}", created_at=T0 + timedelta(hours=n),
                       labels=["a", "b"]) for n in range(1, 6)]
    store.upsert(engine, PullRequest, prs)
    return repo_id


def check_idempotent_and_utc(engine: Engine) -> None:
    repo_id = fill(engine)
    first = rows(engine, PullRequest)
    fill(engine)  # the same rows again
    assert rows(engine, PullRequest) == first and len(first) == 5
    assert store.save_repository(engine, Repository(forge="github", host="github.com", full_name="acme/api")) == repo_id
    # An update on the natural key changes the row in place.
    store.upsert(engine, PullRequest, [PullRequest(repo_id=repo_id, number=1, title="renamed",
                                                   created_at=T0.astimezone(timezone(timedelta(hours=-7))))])
    with engine.connect() as conn:
        got = conn.execute(sa.select(PullRequest.__table__).where(PullRequest.__table__.c.number == 1)).one()
    assert got.title == "renamed" and got.created_at == T0 and got.created_at.tzinfo is not None
    assert got.labels == []  # the new record had no labels
    assert store.count_rows(engine, PullRequest) == 5


def test_sqlite_upserts_are_idempotent_and_times_utc(tmp_path: Path) -> None:
    check_idempotent_and_utc(store.open_engine(f"sqlite:///{tmp_path}/dm.db"))


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.upsert(engine, SyncState, [{"source": "s", "repo": "r", "stream": "x",
                                          "cursor": datetime(2026, 1, 1)}])  # noqa: DTZ001


def test_cursor_round_trip(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    assert store.get_cursor(engine, "github:github.com", "acme/api", "pull_requests") is None
    with engine.begin() as conn:
        store.set_cursor(conn, "github:github.com", "acme/api", "pull_requests", T0, 3600)
    assert store.get_cursor(engine, "github:github.com", "acme/api", "pull_requests") == T0


# A database written by devmetrics schema version 1, before repositories remembered their
# deployment signal: the DDL as version 1 created it.
V1_SCHEMA = """
CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, applied_at DATETIME);
INSERT INTO schema_version VALUES (1, 1, '2026-10-01 00:00:00');
CREATE TABLE repository (id INTEGER PRIMARY KEY, forge VARCHAR NOT NULL, host VARCHAR NOT NULL,
  full_name VARCHAR NOT NULL, default_branch VARCHAR, url VARCHAR, archived BOOLEAN NOT NULL,
  fork BOOLEAN NOT NULL, UNIQUE (forge, host, full_name));
INSERT INTO repository VALUES (1, 'github', 'github.com', 'acme/api', 'main', NULL, 0, 0);
CREATE TABLE pull_request (id INTEGER PRIMARY KEY, repo_id INTEGER REFERENCES repository(id),
  number INTEGER NOT NULL, title VARCHAR NOT NULL, url VARCHAR, author VARCHAR,
  author_is_bot BOOLEAN NOT NULL, draft BOOLEAN NOT NULL, created_at DATETIME, ready_at DATETIME,
  first_commit_at DATETIME, first_review_at DATETIME, merged_at DATETIME, closed_at DATETIME,
  updated_at DATETIME, merge_commit_sha VARCHAR, base_branch VARCHAR, head_branch VARCHAR,
  labels JSON NOT NULL, UNIQUE (repo_id, number));
INSERT INTO pull_request (id, repo_id, number, title, author_is_bot, draft, created_at, merged_at, labels)
  VALUES (1, 1, 7, 'Old PR', 0, 0, '2026-09-30 10:00:00.000000', '2026-10-01 08:00:00.000000', '[]');
"""


def test_migration_from_version_1_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
    engine = store.open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION
        repo = conn.execute(sa.select(Repository.__table__)).one()
        pull = conn.execute(sa.select(PullRequest.__table__)).one()
    assert repo.full_name == "acme/api" and repo.deployment_signal is None
    assert pull.title == "Old PR" and pull.merged_at == datetime(2026, 10, 1, 8, tzinfo=UTC)
    assert pull.reverts_number is None  # a column added after version 1
    # The migrated database takes new writes on the new columns.
    store.upsert(engine, PullRequest, [PullRequest(repo_id=1, number=7, title="Old PR", reverts_number=3)])
    assert store.count_rows(engine, PullRequest) == 1


def as_version_2(engine: Engine) -> None:
    """Make a store look as schema version 2 left it (the v3 step changes no column)."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 2"))


def test_migration_to_version_3_moves_pull_request_cursors_back_to_the_oldest_stored_pr(tmp_path: Path) -> None:
    check_version_3_migration(f"sqlite:///{tmp_path}/v2.db")


def check_version_3_migration(url: str) -> None:
    engine = store.open_engine(url)
    repo_id = store.save_repository(engine, Repository(forge="github", host="github.com", full_name="acme/api"))
    store.upsert(engine, PullRequest, [
        PullRequest(repo_id=repo_id, number=n, title=f"PR {n}", updated_at=T0 + timedelta(days=n),
                    first_review_at=T0) for n in (1, 2, 3)])
    late = T0 + timedelta(days=30)
    with engine.begin() as conn:
        for source, repo, stream in [("github:github.com", "acme/api", "pull_requests"),
                                     ("github:github.com", "acme/api", "deployments"),
                                     ("github:github.com", "acme/other", "pull_requests")]:
            store.set_cursor(conn, source, repo, stream, late)
    before = rows(engine, PullRequest)
    as_version_2(engine)
    engine = store.open_engine(url)
    with engine.connect() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION
    # PR 1 was updated at T0 + 1 day: the next sync re-reads every stored PR of acme/api
    assert store.get_cursor(engine, "github:github.com", "acme/api", "pull_requests") == T0 + timedelta(days=1)
    # other streams, and repos without stored PRs, keep their cursors; every row is kept as it was
    assert store.get_cursor(engine, "github:github.com", "acme/api", "deployments") == late
    assert store.get_cursor(engine, "github:github.com", "acme/other", "pull_requests") == late
    assert rows(engine, PullRequest) == before
    # opened again at version 3, nothing moves
    with engine.begin() as conn:
        store.set_cursor(conn, "github:github.com", "acme/api", "pull_requests", late)
    store.open_engine(url)
    assert store.get_cursor(engine, "github:github.com", "acme/api", "pull_requests") == late


def test_migration_from_version_3_adds_the_failure_cache_and_keeps_rows(tmp_path: Path) -> None:
    """A database version 3 left: every table but package_failure, with a cached package."""
    url = f"sqlite:///{tmp_path}/v3.db"
    engine = store.open_engine(url)
    fill(engine)
    store.upsert(engine, PackageInfo, [PackageInfo(ecosystem="pypi", name="flask", latest_version="3.0.3",
                                                   fetched_at=T0)])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE package_failure"))
        conn.execute(sa.text("UPDATE schema_version SET version = 3"))
    engine.dispose()
    upgraded = store.open_engine(url)
    with upgraded.connect() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION
        assert sa.inspect(conn).has_table("package_failure")
    assert store.count_rows(upgraded, PackageInfo) == 1 and store.count_rows(upgraded, PullRequest) == 5
    store.upsert(upgraded, PackageFailure, [{"ecosystem": "pypi", "name": "gone", "registry_url": "https://pypi.org",
                                             "reason": "HTTP 404", "failed_at": T0}])
    assert store.count_rows(upgraded, PackageFailure) == 1


def filled_database_at(tmp_path: Path, version: int, without: str) -> str:
    """A filled store as schema `version` left it: the table that came later dropped."""
    url = f"sqlite:///{tmp_path}/v{version}.db"
    engine = store.open_engine(url)
    fill(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {without}"))
        conn.execute(sa.text(f"UPDATE schema_version SET version = {version}"))
    engine.dispose()
    return url


def test_migration_from_version_4_adds_the_digest_figures_and_keeps_rows(tmp_path: Path) -> None:
    """A database version 4 left: every table but digest_figure."""
    upgraded = store.open_engine(filled_database_at(tmp_path, 4, without="digest_figure"))
    with upgraded.connect() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION
        assert sa.inspect(conn).has_table("digest_figure")
    assert store.count_rows(upgraded, PullRequest) == 5
    store.upsert(upgraded, DigestFigure, [{"repo": "acme/api", "week": "2026-W47", "key": "deployments",
                                            "value": 3.0, "posted_at": T0}])
    assert store.count_rows(upgraded, DigestFigure) == 1


def test_migration_from_version_5_adds_the_target_weeks_and_keeps_rows(tmp_path: Path) -> None:
    """A database version 5 left: every table but target_week."""
    upgraded = store.open_engine(filled_database_at(tmp_path, 5, without="target_week"))
    with upgraded.connect() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION == 6
        assert sa.inspect(conn).has_table("target_week")
    assert store.count_rows(upgraded, PullRequest) == 5
    store.upsert(upgraded, TargetWeek, [{"target": "t", "repo": "acme/api", "week": "2026-W47", "status": "met",
                                          "value": 3.0, "state": "ok", "since": "2026-W40", "evaluated_at": T0}])
    assert store.count_rows(upgraded, TargetWeek) == 1


def test_newer_database_is_refused(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 999"))
    with pytest.raises(store.StoreError, match="newer than this devmetrics"):
        store.open_engine(f"sqlite:///{tmp_path}/dm.db")


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(store.ConfigError, match="database.url"):
        store.open_engine("nosuchdb://x")


@pytest.fixture
def postgres_url(postgres_schema: str) -> Iterator[str]:
    yield postgres_schema


@pytest.mark.postgres
def test_postgres_store_for_real(postgres_url: str) -> None:
    engine = store.open_engine(postgres_url)
    assert engine.dialect.name == "postgresql"
    check_idempotent_and_utc(engine)


@pytest.mark.postgres
def test_postgres_migration_to_version_3(postgres_url: str) -> None:
    check_version_3_migration(postgres_url)


@pytest.mark.postgres
def test_postgres_password_hidden_in_messages() -> None:
    assert "s3cret" not in store.safe_url("postgresql+psycopg://u:s3cret@127.0.0.1/test")
