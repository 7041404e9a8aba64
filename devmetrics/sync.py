"""For each source × repo × stream: cursor → connector → store.

The cursor of a stream moves only in the transaction after every row it covers is
committed, so a sync killed at any moment resumes without a gap, and idempotent upserts
make the re-read rows harmless. A failing repo or stream is reported and the others go on.
A sync that stops early (a rate limit past max_wait) or a stream that fails may add rows
and move cursors for what was stored, but never rewrites what it did not finish reading:
the repository row keeps its deployment signal until the streams that decide it were read
to the end.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from devmetrics import signals, store
from devmetrics.clock import now_utc
from devmetrics.config import Config, GitHubSource, GitLabSource
from devmetrics.connectors.base import Connector, Stream
from devmetrics.errors import DevmetricsError, RateLimitExhausted
from devmetrics.models import Deployment, DeploymentCommit, Repository

log = logging.getLogger("devmetrics.sync")

Source = GitHubSource | GitLabSource
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SyncOptions:
    since: datetime | None = None  # first sync reads from here (default: sync.since_days ago)
    full: bool = False  # ignore cursors and re-read from `since` (or everything)
    repos: tuple[str, ...] = ()  # globs on full names; empty: all configured
    shard: tuple[int, int] | None = None  # (i, n): this collector takes shard i of n (1-based)
    deps: bool = True  # evaluate dependency freshness


@dataclass
class StreamResult:
    repo: str
    stream: str
    records: int = 0
    error: str | None = None


@dataclass
class SyncResult:
    streams: list[StreamResult] = field(default_factory=list)
    requests: int = 0
    stopped: str | None = None  # why the sync stopped early (rate limit budget gone)
    listed: list[str] = field(default_factory=list)  # every repo the sources listed, before --repo/--shard

    @property
    def repos(self) -> list[str]:
        """The repos this sync tried (a configured entry whose listing failed counts as one)."""
        return list(dict.fromkeys(s.repo for s in self.streams))

    @property
    def failed_repos(self) -> dict[str, StreamResult]:
        """Each repo with a failed stream or step, and its first failure."""
        failed: dict[str, StreamResult] = {}
        for stream in self.failures:
            failed.setdefault(stream.repo, stream)
        return failed

    @property
    def nothing_synced(self) -> bool:
        """Every repo tried failed in every stream (a wrong token, a host out of reach)."""
        return bool(self.streams) and all(s.error for s in self.streams)

    @property
    def failures(self) -> list[StreamResult]:
        return [s for s in self.streams if s.error]

    def add(self, result: StreamResult) -> StreamResult:
        self.streams.append(result)
        return result


def build_connector(config: Config, source: Source) -> Connector:
    """The connector for a configured source (the token is read from its env var here)."""
    key = config.source_key(source)
    bots = tuple(config.report.bots)
    if isinstance(source, GitHubSource):
        from devmetrics.connectors.github import GitHubConnector

        token = "" if source.app_id else source.token(key, config.path)
        return GitHubConnector(source, config.sync, token, bots)
    from devmetrics.connectors.gitlab import GitLabConnector

    return GitLabConnector(source, config.sync, source.token(key, config.path), bots)


def in_shard(repo: Repository, shard: tuple[int, int] | None) -> bool:
    """A stable split of repos over N collectors (crc32 of the repo's identity)."""
    if shard is None:
        return True
    index, count = shard
    identity = f"{repo.forge}:{repo.host}/{repo.full_name}".lower().encode()
    return zlib.crc32(identity) % count == index - 1


def selected(repo: Repository, options: SyncOptions) -> bool:
    wanted = not options.repos or any(fnmatch.fnmatch(repo.full_name, g) for g in options.repos)
    return wanted and in_shard(repo, options.shard)


def run_sync(config: Config, engine: Engine, options: SyncOptions = SyncOptions(),
             progress: Progress | None = None,
             connector_factory: Callable[[Config, Source], Connector] = build_connector) -> SyncResult:
    result = SyncResult()
    for source in config.sources:
        connector = connector_factory(config, source)
        try:
            _sync_source(config, engine, options, source, connector, result, progress)
        except RateLimitExhausted as exc:
            result.stopped = str(exc)
        finally:
            result.requests += connector.request_count()
        if result.stopped:
            break
    return result


def _sync_source(config: Config, engine: Engine, options: SyncOptions, source: Source,
                 connector: Connector, result: SyncResult, progress: Progress | None) -> None:
    for repo in _resolve_repos(source, connector, options, result):
        repo.id = _save_repository(engine, repo)
        unfinished: list[str] = []  # streams that feed a deployment signal and failed
        for stream in connector.streams:
            _notify(progress, f"{repo.full_name}: {stream.name}")
            if result.add(sync_stream(config, engine, options, connector, repo, stream)).error and stream.signal:
                unfinished.append(stream.name)
        _notify(progress, f"{repo.full_name}: deployments signal")
        result.add(_guarded(repo, "signal", functools.partial(_link_deployments, engine, source, connector, repo,
                                                              tuple(unfinished))))
        if options.deps:
            _notify(progress, f"{repo.full_name}: dependencies")
            result.add(_guarded(repo, "dependencies",
                                functools.partial(_evaluate_dependencies, config, engine, connector, repo)))


def _save_repository(engine: Engine, repo: Repository) -> int:
    """Store the forge's view of a repo (name, default branch, url, flags).

    Its deployment signal and synced_at are the signal step's to write: a sync that stops
    before that step must leave them as the last complete sync stored them.
    """
    table = Repository.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.deployment_signal, table.c.synced_at).where(
            table.c.forge == repo.forge, table.c.host == repo.host, table.c.full_name == repo.full_name)).first()
    if stored is not None:
        repo.deployment_signal, repo.synced_at = stored.deployment_signal, stored.synced_at
    return store.save_repository(engine, repo)


def _resolve_repos(source: Source, connector: Connector, options: SyncOptions,
                   result: SyncResult) -> list[Repository]:
    """Each configured entry on its own, so a repo that vanished does not stop the others."""
    found: dict[str, Repository] = {}
    for entry in source.repos:
        try:
            repos = connector.list_repos([entry])
        except RateLimitExhausted:
            raise
        except DevmetricsError as exc:
            result.add(StreamResult(entry, "repositories", error=str(exc)))
            continue
        for repo in repos:
            result.listed.append(repo.full_name)
            if selected(repo, options):
                found.setdefault(repo.full_name.lower(), repo)
    return list(found.values())


def _notify(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


def _guarded(repo: Repository, step: str, work: Callable[[], int]) -> StreamResult:
    try:
        return StreamResult(repo.full_name, step, records=work())
    except RateLimitExhausted:
        raise
    except DevmetricsError as exc:
        log.warning("%s: %s: %s", repo.full_name, step, exc)
        return StreamResult(repo.full_name, step, error=str(exc))


def sync_stream(config: Config, engine: Engine, options: SyncOptions, connector: Connector,
                repo: Repository, stream: Stream) -> StreamResult:
    """Read one stream of one repo from its cursor, store it, then move the cursor."""
    cursor = None if options.full else store.get_cursor(engine, connector.source_key, repo.full_name, stream.name)
    since = _read_from(config, options, stream, cursor)
    newest, written = cursor, 0
    try:
        for batch in connector.fetch(repo, stream.name, since):
            with engine.begin() as conn:
                written += store.upsert(conn, stream.model, _owned(batch.records, repo))
            newest = max(filter(None, (newest, batch.cursor)), default=None)
    except RateLimitExhausted:
        raise
    except DevmetricsError as exc:
        log.warning("%s: %s: %s", repo.full_name, stream.name, exc)
        return StreamResult(repo.full_name, stream.name, written, error=str(exc))
    if newest is not None:
        with engine.begin() as conn:
            store.set_cursor(conn, connector.source_key, repo.full_name, stream.name, newest,
                             int(_lookback(config, stream).total_seconds()))
    return StreamResult(repo.full_name, stream.name, written)


def _read_from(config: Config, options: SyncOptions, stream: Stream,
               cursor: datetime | None) -> datetime | None:
    if cursor is not None:
        return cursor - _lookback(config, stream)
    if options.full and options.since is None:
        return None
    return options.since or now_utc() - timedelta(days=config.sync.since_days)


def _lookback(config: Config, stream: Stream) -> timedelta:
    return timedelta(days=config.sync.lookback_days) if stream.lookback else timedelta(0)


def _owned(records: Iterable[SQLModel], repo: Repository) -> list[SQLModel]:
    records = list(records)
    for record in records:
        record.repo_id = repo.id  # type: ignore[attr-defined]
    return records


def _link_deployments(engine: Engine, source: Source, connector: Connector, repo: Repository,
                      unfinished: tuple[str, ...] = ()) -> int:
    """Choose the repo's deployment signal, derive its deployments, store what each shipped."""
    pattern = source.setting(repo.full_name, "production")
    workflow = source.setting(repo.full_name, "workflow")
    with engine.begin() as conn:
        signal = _decide_signal(conn, source, repo, pattern, workflow, unfinished)
        if signal is not None:
            store.upsert(conn, Deployment, signals.derived_deployments(conn, repo, signal, workflow))
    return 0 if signal is None else _store_shipped_commits(engine, connector, repo, signal, pattern)


def _decide_signal(conn: sa.Connection, source: Source, repo: Repository, pattern: str,
                   workflow: str | None, unfinished: tuple[str, ...]) -> str | None:
    """`auto` picks the first signal with data, so a stream read only in part could make it
    pick another one: then the stored signal stays (and derives what it derives) until a
    sync reads those streams to the end."""
    wanted = source.setting(repo.full_name, "deployments")
    if wanted == "auto" and unfinished:
        log.info("%s: deployment signal kept as %s (%s not read to the end)", repo.full_name,
                 repo.deployment_signal, ", ".join(unfinished))
        return repo.deployment_signal
    signal = signals.choose_signal(conn, repo, wanted, pattern, workflow)
    _set_signal(conn, repo, signal)
    return signal


def _set_signal(conn: sa.Connection, repo: Repository, signal: str | None) -> None:
    table = Repository.__table__  # type: ignore[attr-defined]
    conn.execute(sa.update(table).where(table.c.id == repo.id)
                 .values(deployment_signal=signal, synced_at=now_utc()))


def _store_shipped_commits(engine: Engine, connector: Connector, repo: Repository, signal: str,
                           pattern: str) -> int:
    """The compare range previous..this for each successful production deployment not yet known.

    One compare request per new deployment; a merge deployment ships exactly its merge commit.
    """
    with engine.connect() as conn:
        deployments = signals.successful_production(conn, repo, signal, pattern)
        known = _deployments_with_commits(conn, repo, signal)
    written = 0
    for previous, current in zip([None, *deployments], deployments, strict=False):
        if current.deployment_id in known or not current.sha:
            continue
        shas = _shipped(connector, repo, signal, previous, current)
        if shas is None:
            continue
        # A rollback (an older sha) ships nothing new; keep its own sha so it is not
        # compared again on every sync.
        shas = shas or [current.sha]
        rows = [DeploymentCommit(repo_id=repo.id, source=signal, deployment_id=current.deployment_id,
                                 sha=sha) for sha in shas]
        written += store.upsert(engine, DeploymentCommit, rows)
    return written


def _shipped(connector: Connector, repo: Repository, signal: str, previous: object | None,
             current: object) -> list[str] | None:
    sha: str = current.sha  # type: ignore[attr-defined]
    if signal == "merges":
        return [sha]
    base = getattr(previous, "sha", None)
    if not base:
        return None  # no predecessor: the calculator falls back to time (metrics.md §4)
    return connector.compare(repo, base, sha)


def _deployments_with_commits(conn: sa.Connection, repo: Repository, signal: str) -> set[str]:
    table = DeploymentCommit.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.deployment_id).where(
        table.c.repo_id == repo.id, table.c.source == signal).distinct()
    return {row.deployment_id for row in conn.execute(query)}


def _evaluate_dependencies(config: Config, engine: Engine, connector: Connector,
                           repo: Repository) -> int:
    """Manifests on the default branch -> registries -> Dependency rows and a snapshot."""
    from devmetrics.deps import freshness

    assert repo.id is not None
    registries = freshness.registries_for(
        engine, config.registries, failure_ttl=timedelta(hours=config.deps.failed_lookup_ttl_hours))
    result = freshness.evaluate_repo(connector.list_files(repo),
                                     functools.partial(connector.read_file, repo), registries)
    freshness.save_freshness(engine, repo.id, result)
    return len(result.dependencies)
