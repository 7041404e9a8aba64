"""The registry cache in the store, and look-ups that go to the registries only when needed.

A version's release date never changes, so PackageVersion rows are kept forever; a
package's list of versions (and so its latest) is trusted for a day (PackageInfo). A
failed look-up (a package the registry does not know, an outage) is remembered with its
reason (PackageFailure) and not asked again for `failure_ttl` (config
`deps.failed_lookup_ttl_hours`, default a day) unless the registry's URL changed.
Cold cache: one request per (ecosystem, package). Warm cache: none, failures included.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from devmetrics import store
from devmetrics.clock import now_utc
from devmetrics.deps.registries import (
    Key,
    PackageReleases,
    RegistryClient,
    RegistryError,
    RegistrySkipped,
    Release,
    canonical_name,
)
from devmetrics.models import PackageFailure, PackageInfo, PackageVersion

log = logging.getLogger("devmetrics.deps")

LATEST_TTL = timedelta(days=1)
FAILURE_TTL = timedelta(days=1)
QUERY_CHUNK = 400  # names per IN (...) list: well under SQLite's variable limit

Fetched = PackageReleases | RegistryError


@dataclass(frozen=True)
class Failure:
    """A look-up that failed: where it was asked, why, and when."""

    registry_url: str
    reason: str
    failed_at: datetime


def _chunks(keys: Iterable[Key]) -> Iterable[tuple[str, list[str]]]:
    """(ecosystem, names) in slices a single IN (...) can take."""
    by_ecosystem: dict[str, list[str]] = {}
    for ecosystem, name in set(keys):
        by_ecosystem.setdefault(ecosystem, []).append(name)
    for ecosystem, names in by_ecosystem.items():
        for start in range(0, len(names), QUERY_CHUNK):
            yield ecosystem, names[start:start + QUERY_CHUNK]


def load(engine: Engine, keys: Iterable[Key]) -> dict[Key, PackageReleases]:
    """Cached packages for `keys` (those never fetched are absent)."""
    packages: dict[Key, PackageReleases] = {}
    info_table, version_table = PackageInfo.__table__, PackageVersion.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        for ecosystem, chunk in _chunks(keys):
            for row in conn.execute(_select(info_table, ecosystem, chunk)):
                packages[(ecosystem, row.name)] = PackageReleases(
                    ecosystem, row.name, latest=row.latest_version, complete=row.complete,
                    fetched_at=row.fetched_at)
            for row in conn.execute(_select(version_table, ecosystem, chunk)):
                package = packages.get((ecosystem, row.name))
                if package is not None:
                    package.releases[row.version] = Release(row.released_at, row.yanked)
    return packages


def load_failures(engine: Engine, keys: Iterable[Key]) -> dict[Key, Failure]:
    """The last failed look-up of each of `keys` that has one."""
    table = PackageFailure.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {(row.ecosystem, row.name): Failure(row.registry_url, row.reason, row.failed_at)
                for ecosystem, chunk in _chunks(keys)
                for row in conn.execute(_select(table, ecosystem, chunk))}


def _select(table: sa.Table, ecosystem: str, names: list[str]) -> sa.Select[tuple[object, ...]]:
    return sa.select(table).where(table.c.ecosystem == ecosystem, table.c.name.in_(names))


def save(engine: Engine, fetched: Iterable[tuple[PackageReleases, PackageReleases | None]],
         failures: Mapping[Key, Failure] | None = None, recovered: Collection[Key] = ()) -> None:
    """Store fetched packages (with what the cache held before): their info, and only the
    versions that are new or changed; and the look-ups that failed, forgetting the failures
    of `recovered` packages. One transaction."""
    infos, versions = [], []
    for package, cached in fetched:
        infos.append(PackageInfo(ecosystem=package.ecosystem, name=package.name,
                                 latest_version=package.latest, complete=package.complete,
                                 fetched_at=package.fetched_at))
        versions += _changed_versions(package, cached)
    failed = [{"ecosystem": key[0], "name": key[1], "registry_url": failure.registry_url,
               "reason": failure.reason, "failed_at": failure.failed_at}
              for key, failure in (failures or {}).items()]
    with engine.begin() as conn:
        store.upsert(conn, PackageInfo, infos)
        store.upsert(conn, PackageVersion, versions)
        store.upsert(conn, PackageFailure, failed)
        _forget_failures(conn, recovered)


def _forget_failures(conn: Connection, keys: Collection[Key]) -> None:
    table = PackageFailure.__table__  # type: ignore[attr-defined]
    for ecosystem, chunk in _chunks(keys):
        conn.execute(sa.delete(table).where(table.c.ecosystem == ecosystem, table.c.name.in_(chunk)))


def _changed_versions(package: PackageReleases, cached: PackageReleases | None) -> list[dict[str, object]]:
    # Plain dicts, not PackageVersion instances: thousands of model objects per sync cost
    # seconds for nothing (store.upsert takes either).
    old = cached.releases if cached is not None else {}
    return [{"ecosystem": package.ecosystem, "name": package.name, "version": version,
             "released_at": release.released_at, "yanked": release.yanked}
            for version, release in package.releases.items() if old.get(version) != release]


def is_fresh(package: PackageReleases | None, wanted: Collection[str], now: datetime) -> bool:
    """Usable without a request: fetched within a day, and holding every version wanted
    (a full list that lacks one is still fresh: that version is simply not published)."""
    if package is None or package.fetched_at is None or now - package.fetched_at > LATEST_TTL:
        return False
    return package.complete or all(package.released_at(v) is not None for v in wanted)


def merge(fetched: PackageReleases, cached: PackageReleases | None) -> PackageReleases:
    """A partial fetch (Go) keeps the versions cached earlier; dates never change."""
    if cached is None or fetched.complete:
        return fetched
    fetched.releases = {**cached.releases, **fetched.releases}
    return fetched


def canonical_wanted(wanted: Mapping[Key, Collection[str]]) -> dict[Key, set[str]]:
    """`wanted` under each package's canonical name: `Foo_Bar` and `foo-bar` are one look-up."""
    merged: dict[Key, set[str]] = {}
    for (ecosystem, name), versions in wanted.items():
        merged.setdefault((ecosystem, canonical_name(ecosystem, name)), set()).update(versions)
    return merged


class CachedRegistries:
    """Registry look-ups through the store's cache (engine None: no cache, e.g. a dry run)."""

    def __init__(self, client: RegistryClient, engine: Engine | None = None,
                 failure_ttl: timedelta = FAILURE_TTL) -> None:
        self.client = client
        self.engine = engine
        self.failure_ttl = failure_ttl

    def lookup(self, wanted: Mapping[Key, Collection[str]],
               now: datetime | None = None) -> dict[Key, PackageReleases | None]:
        """Packages for `wanted` ((ecosystem, name) -> versions in use); None when unknown."""
        now = now or now_utc()
        asked = canonical_wanted(wanted)
        cached = load(self.engine, asked) if self.engine is not None else {}
        failed = load_failures(self.engine, asked) if self.engine is not None else {}
        stale = {key: versions for key, versions in asked.items()
                 if not is_fresh(cached.get(key), versions, now)}
        waiting = {key for key in stale if self._still_failed(key, failed.get(key), now)}
        due = {key: versions for key, versions in stale.items() if key not in waiting}
        known = {key: [v for v, r in cached[key].releases.items() if r.released_at]
                 for key in due if key in cached}
        fetched = self.client.fetch_each(due, known) if due else {}
        for package in fetched.values():
            if isinstance(package, PackageReleases):  # freshness is judged on the evaluation's clock
                package.fetched_at = now
        result = {key: self._settle(key, fetched, cached, waiting) for key in asked}
        if self.engine is not None:
            self._save(result, fetched, cached, failed, now)
        return {key: result[(key[0], canonical_name(*key))] for key in wanted}

    def _still_failed(self, key: Key, failure: Failure | None, now: datetime) -> bool:
        """A failure within the TTL, at the URL asked today: not worth another request."""
        if failure is None or failure.registry_url != self.client.base_url(key[0]):
            return False
        retry_at = failure.failed_at + self.failure_ttl
        if now >= retry_at:
            return False
        log.warning("%s package %s: not asked; its look-up failed at %s UTC (%s), asked again "
                    "after %s UTC", key[0], key[1], f"{failure.failed_at:%Y-%m-%d %H:%M}",
                    failure.reason, f"{retry_at:%Y-%m-%d %H:%M}")
        return True

    def _settle(self, key: Key, fetched: Mapping[Key, Fetched], cached: Mapping[Key, PackageReleases],
                waiting: Collection[Key]) -> PackageReleases | None:
        package = fetched.get(key)
        if isinstance(package, PackageReleases):
            return merge(package, cached.get(key))
        if package is None and key not in waiting:
            return cached[key]  # fresh: not asked
        if key in cached:  # a failure with older data at hand: better than nothing
            log.warning("%s package %s: using cached data from %s", key[0], key[1],
                        cached[key].fetched_at)
        return cached.get(key)

    def _save(self, result: Mapping[Key, PackageReleases | None], fetched: Mapping[Key, Fetched],
              cached: Mapping[Key, PackageReleases], failed: Mapping[Key, Failure], now: datetime) -> None:
        assert self.engine is not None
        answered = [key for key, package in fetched.items() if isinstance(package, PackageReleases)]
        # Not asked (the breaker had tripped) is not a failure of the package.
        failures = {key: Failure(self.client.base_url(key[0]), str(error), now)
                    for key, error in fetched.items()
                    if isinstance(error, RegistryError) and not isinstance(error, RegistrySkipped)}
        packages = [(package, cached.get(key)) for key, package in result.items()
                    if key in answered and package is not None]
        save(self.engine, packages, failures, [key for key in answered if key in failed])
