"""Sync orchestration with an in-memory connector: cursors, failures, shards, signals, lock."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.config import parse_config
from devmetrics.connectors.base import Batch, Stream
from devmetrics.errors import ForgeError, LockedError, RateLimitExhausted
from devmetrics.lock import sync_lock
from devmetrics.models import (
    Deployment,
    DeploymentCommit,
    PullRequest,
    Release,
    Repository,
    SyncState,
)
from devmetrics.sync import SyncOptions, in_shard, run_sync

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


class FakeConnector:
    """Serves in-memory records the way a forge connector would, and records what it was asked."""

    source_key = "github:fake"
    streams = (
        Stream("pull_requests", PullRequest, "updated_at", server_side_filter=False),
        Stream("deployments", Deployment, "updated_at", server_side_filter=False),
        Stream("releases", Release, "published_at", server_side_filter=False, lookback=False),
    )

    def __init__(self, repos: list[str]) -> None:
        self.repos = repos
        self.data: dict[tuple[str, str], list] = {}
        self.asked: list[tuple[str, str, datetime | None]] = []
        self.compares: list[tuple[str, str]] = []
        self.fail: set[tuple[str, str]] = set()
        self.page_size = 2

    def list_repos(self, entries: list[str] | None = None) -> list[Repository]:
        names = [n for n in self.repos if not entries or any(fnmatch.fnmatch(n, e) for e in entries)]
        return [Repository(forge="github", host="fake", full_name=name, default_branch="main") for name in names]

    def fetch(self, repo: Repository, stream: str, since: datetime | None) -> Iterator[Batch]:
        self.asked.append((repo.full_name, stream, since))
        cursor_field = next(s.cursor_field for s in self.streams if s.name == stream)
        records = [r for r in self.data.get((repo.full_name, stream), [])
                   if since is None or getattr(r, cursor_field) >= since]
        for start in range(0, len(records), self.page_size):
            if (repo.full_name, stream) in self.fail and start > 0:
                raise ForgeError(f"{repo.full_name}: {stream}: 502 Bad Gateway")
            page = [r.model_copy() for r in records[start:start + self.page_size]]
            yield Batch(page, max(getattr(r, cursor_field) for r in page))

    def compare(self, repo: Repository, base: str, head: str) -> list[str]:
        self.compares.append((base, head))
        return [f"{head}-1", head]

    def list_files(self, repo: Repository) -> list[str]:
        return []

    def read_file(self, repo: Repository, path: str) -> bytes:
        return b""

    def request_count(self) -> int:
        return len(self.asked) + len(self.compares)


def pulls(count: int, start: datetime = NOW - timedelta(days=10)) -> list[PullRequest]:
    return [PullRequest(number=n, title=f"PR {n}", created_at=start, updated_at=start + timedelta(hours=n),
                        merged_at=start + timedelta(hours=n), merge_commit_sha=f"m{n}", base_branch="main")
            for n in range(1, count + 1)]


def deployment(n: int, env: str = "production", status: str = "success") -> Deployment:
    at = NOW - timedelta(days=5 - n)
    return Deployment(source="environments", deployment_id=str(n), environment=env, sha=f"s{n}",
                      created_at=at, finished_at=at, status=status, updated_at=at)


@pytest.fixture
def setup(tmp_path: Path) -> tuple:
    config = parse_config({"database": {"url": f"sqlite:///{tmp_path}/dm.db"},
                           "github": [{"repos": ["acme/*"], "token_env": "UNUSED"}]})
    engine = store.open_engine(config.database.url)
    connector = FakeConnector(["acme/api", "acme/web"])
    return config, engine, connector


def sync(setup: tuple, **options: object):  # noqa: ANN201
    config, engine, connector = setup
    return run_sync(config, engine, SyncOptions(since=NOW - timedelta(days=90), deps=False, **options),
                    connector_factory=lambda c, s: connector)


def table(engine: Engine, model: type) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(model.__table__)))


def test_first_sync_stores_every_page_and_sets_cursors(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(5)  # 3 pages of 2
    result = sync(setup)
    assert not result.failures
    assert store.count_rows(engine, PullRequest) == 5
    cursor = store.get_cursor(engine, "github:fake", "acme/api", "pull_requests")
    assert cursor == NOW - timedelta(days=10) + timedelta(hours=5)  # the newest updated_at


def test_second_sync_reads_from_cursor_minus_lookback(setup: tuple) -> None:
    config, engine, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(3)
    sync(setup)
    connector.asked.clear()
    sync(setup)
    since = {(repo, stream): s for repo, stream, s in connector.asked}
    newest = NOW - timedelta(days=10) + timedelta(hours=3)
    assert since[("acme/api", "pull_requests")] == newest - timedelta(days=config.sync.lookback_days)


def test_an_upgraded_store_re_reads_its_prs_once_for_the_new_first_response_rule(setup: tuple) -> None:
    config, engine, connector = setup
    stored = pulls(3, start=NOW - timedelta(days=40))  # all older than cursor minus lookback
    for pr in stored:
        pr.first_review_at = pr.created_at  # as the old rule found it (a comment while a draft)
    connector.data[("acme/api", "pull_requests")] = stored
    sync(setup)
    with engine.begin() as conn:  # a store last written by schema version 2
        conn.execute(sa.text("UPDATE schema_version SET version = 2"))
    # the upgraded connector answers the same PRs with the first response under the new rule
    answered = [pr.model_copy(update={"first_review_at": pr.created_at + timedelta(hours=2)}) for pr in stored]
    connector.data[("acme/api", "pull_requests")] = answered
    setup = (config, store.open_engine(config.database.url), connector)
    connector.asked.clear()
    assert not sync(setup).failures
    since = {(repo, stream): s for repo, stream, s in connector.asked}
    oldest = NOW - timedelta(days=40) + timedelta(hours=1)
    assert since[("acme/api", "pull_requests")] == oldest - timedelta(days=config.sync.lookback_days)
    got = sorted((row.number, row.first_review_at) for row in table(engine, PullRequest))
    assert got == [(pr.number, pr.created_at + timedelta(hours=2)) for pr in stored]


def test_full_sync_ignores_cursors(setup: tuple) -> None:
    _, _, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(3)
    sync(setup)
    connector.asked.clear()
    sync(setup, full=True)
    assert all(s == NOW - timedelta(days=90) for _, _, s in connector.asked)


def test_failed_stream_keeps_its_cursor_and_the_other_repos_sync(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(5)
    connector.data[("acme/web", "pull_requests")] = pulls(2)
    connector.fail.add(("acme/api", "pull_requests"))
    result = sync(setup)
    assert [(f.repo, f.stream) for f in result.failures] == [("acme/api", "pull_requests")]
    assert "502" in (result.failures[0].error or "")
    # The first page was stored, but the cursor did not move past what is stored.
    assert store.get_cursor(engine, "github:fake", "acme/api", "pull_requests") is None
    assert store.get_cursor(engine, "github:fake", "acme/web", "pull_requests") is not None
    assert store.count_rows(engine, PullRequest) == 2 + 2


def test_exhausted_rate_limit_stops_cleanly(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(2)

    def exhausted(*args: object) -> Iterator[Batch]:
        raise RateLimitExhausted("acme/api: deployments: rate limit resets at 13:00 UTC")
        yield  # pragma: no cover

    original = connector.fetch
    connector.fetch = lambda repo, stream, since: (exhausted() if stream == "deployments"
                                                   else original(repo, stream, since))
    result = sync(setup)
    assert result.stopped and "13:00" in result.stopped
    assert store.count_rows(engine, PullRequest) == 2  # what was read before is kept


def test_environment_signal_and_compare_ranges(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/api", "deployments")] = [deployment(1), deployment(2, "staging"),
                                                   deployment(3), deployment(4, status="failure")]
    sync(setup)
    repos = {r.full_name: r.deployment_signal for r in table(engine, Repository)}
    assert repos == {"acme/api": "environments", "acme/web": None}
    # Deployment 1 has no predecessor (time fallback); 3 ships s1..s3; staging and failures are not ranges.
    assert connector.compares == [("s1", "s3")]
    assert sorted((c.deployment_id, c.sha) for c in table(engine, DeploymentCommit)) == [("3", "s3"), ("3", "s3-1")]
    connector.compares.clear()
    sync(setup)
    assert connector.compares == []  # known ranges are not asked for again


def test_merges_signal_when_nothing_else_has_data(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/web", "pull_requests")] = pulls(3)
    sync(setup)
    merges = [d for d in table(engine, Deployment) if d.source == "merges"]
    assert sorted(d.deployment_id for d in merges) == ["1", "2", "3"]
    assert all(d.status == "success" and d.finished_at for d in merges)
    assert connector.compares == []  # a merge ships exactly its merge commit
    assert sorted(c.sha for c in table(engine, DeploymentCommit)) == ["m1", "m2", "m3"]


def test_releases_signal_skips_drafts_and_prereleases(setup: tuple) -> None:
    _, engine, connector = setup
    at = NOW - timedelta(days=3)
    connector.data[("acme/web", "releases")] = [
        Release(release_id="1", tag="v1", sha="a1", published_at=at),
        Release(release_id="2", tag="v2-rc", sha="a2", prerelease=True, published_at=at),
        Release(release_id="3", tag="v3", sha="a3", draft=True, published_at=at)]
    sync(setup)
    assert [d.deployment_id for d in table(engine, Deployment) if d.source == "releases"] == ["1"]


def test_shards_split_repos_deterministically() -> None:
    repos = [Repository(forge="github", host="github.com", full_name=f"acme/r{i}") for i in range(200)]
    shards = [[r.full_name for r in repos if in_shard(r, (i, 4))] for i in range(1, 5)]
    assert sum(len(s) for s in shards) == 200 and len({n for s in shards for n in s}) == 200
    assert all(30 <= len(s) <= 70 for s in shards)  # a fair split, not everything in one


def test_sync_lock_excludes_a_second_sync(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with sync_lock(engine), pytest.raises(LockedError), sync_lock(engine, wait=False):
        pass
    entered = threading.Event()
    with sync_lock(engine):
        waiter = threading.Thread(target=lambda: _enter(engine, entered))
        waiter.start()
        assert not entered.wait(0.7)  # the second one waits ...
    waiter.join(5)
    assert entered.is_set()  # ... and goes on once the first is done


def _enter(engine: Engine, entered: threading.Event) -> None:
    with sync_lock(engine, wait=True, timeout=10):
        entered.set()


def test_different_shards_sync_side_by_side(tmp_path: Path) -> None:
    engine = store.open_engine(f"sqlite:///{tmp_path}/dm.db")
    with sync_lock(engine, shard=(1, 2)), sync_lock(engine, wait=False, shard=(2, 2)):
        assert_locked(engine, shard=(1, 2))  # but the same shard twice is refused


def assert_locked(engine: Engine, shard: tuple[int, int] | None = None) -> None:
    with pytest.raises(LockedError), sync_lock(engine, wait=False, shard=shard):
        pass


@pytest.mark.postgres
def test_postgres_advisory_lock(postgres_schema: str) -> None:
    engine = store.open_engine(postgres_schema)
    other = store.open_engine(postgres_schema)
    with sync_lock(engine), pytest.raises(LockedError), sync_lock(other, wait=False):
        pass
    with sync_lock(other, wait=False):
        pass


def test_cursor_state_rows_name_source_repo_stream(setup: tuple) -> None:
    _, engine, connector = setup
    connector.data[("acme/api", "pull_requests")] = pulls(1)
    sync(setup)
    states = {(s.source, s.repo, s.stream) for s in table(engine, SyncState)}
    assert ("github:fake", "acme/api", "pull_requests") in states
