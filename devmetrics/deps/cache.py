"""The registry cache in the store, and look-ups that go to the registries only when needed.

A version's release date never changes, so PackageVersion rows are kept forever; a
package's list of versions (and so its latest) is trusted for a day (PackageInfo).
Cold cache: one request per (ecosystem, package). Warm cache: none.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.clock import now_utc
from devmetrics.deps.registries import Key, PackageReleases, RegistryClient, Release
from devmetrics.models import PackageInfo, PackageVersion

log = logging.getLogger("devmetrics.deps")

LATEST_TTL = timedelta(days=1)
QUERY_CHUNK = 400  # names per IN (...) list: well under SQLite's variable limit


def load(engine: Engine, keys: Iterable[Key]) -> dict[Key, PackageReleases]:
    """Cached packages for `keys` (those never fetched are absent)."""
    wanted = set(keys)
    packages: dict[Key, PackageReleases] = {}
    info_table, version_table = PackageInfo.__table__, PackageVersion.__table__  # type: ignore[attr-defined]
    by_ecosystem: dict[str, list[str]] = {}
    for ecosystem, name in wanted:
        by_ecosystem.setdefault(ecosystem, []).append(name)
    with engine.connect() as conn:
        for ecosystem, names in by_ecosystem.items():
            for start in range(0, len(names), QUERY_CHUNK):
                chunk = names[start:start + QUERY_CHUNK]
                for row in conn.execute(_select(info_table, ecosystem, chunk)):
                    packages[(ecosystem, row.name)] = PackageReleases(
                        ecosystem, row.name, latest=row.latest_version, complete=row.complete,
                        fetched_at=row.fetched_at)
                for row in conn.execute(_select(version_table, ecosystem, chunk)):
                    package = packages.get((ecosystem, row.name))
                    if package is not None:
                        package.releases[row.version] = Release(row.released_at, row.yanked)
    return packages


def _select(table: sa.Table, ecosystem: str, names: list[str]) -> sa.Select[tuple[object, ...]]:
    return sa.select(table).where(table.c.ecosystem == ecosystem, table.c.name.in_(names))


def save(engine: Engine, fetched: Iterable[tuple[PackageReleases, PackageReleases | None]]) -> None:
    """Store fetched packages (with what the cache held before): their info, and only the
    versions that are new or changed, in one transaction."""
    infos, versions = [], []
    for package, cached in fetched:
        infos.append(PackageInfo(ecosystem=package.ecosystem, name=package.name,
                                 latest_version=package.latest, complete=package.complete,
                                 fetched_at=package.fetched_at))
        versions += _changed_versions(package, cached)
    with engine.begin() as conn:
        store.upsert(conn, PackageInfo, infos)
        store.upsert(conn, PackageVersion, versions)


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


class CachedRegistries:
    """Registry look-ups through the store's cache (engine None: no cache, e.g. a dry run)."""

    def __init__(self, client: RegistryClient, engine: Engine | None = None) -> None:
        self.client = client
        self.engine = engine

    def lookup(self, wanted: Mapping[Key, Collection[str]],
               now: datetime | None = None) -> dict[Key, PackageReleases | None]:
        """Packages for `wanted` ((ecosystem, name) -> versions in use); None when unknown."""
        now = now or now_utc()
        cached = load(self.engine, wanted) if self.engine is not None else {}
        stale = {key: versions for key, versions in wanted.items()
                 if not is_fresh(cached.get(key), versions, now)}
        known = {key: [v for v, r in cached[key].releases.items() if r.released_at]
                 for key in stale if key in cached}
        fetched = self.client.fetch_many(stale, known) if stale else {}
        for package in fetched.values():
            if package is not None:  # freshness is judged on the evaluation's clock
                package.fetched_at = now
        result = {key: self._settle(key, fetched, cached) for key in wanted}
        if self.engine is not None:
            save(self.engine, [(package, cached.get(key)) for key, package in result.items()
                               if package is not None and fetched.get(key) is package])
        return result

    def _settle(self, key: Key, fetched: Mapping[Key, PackageReleases | None],
                cached: Mapping[Key, PackageReleases]) -> PackageReleases | None:
        if key not in fetched:
            return cached[key]
        package = fetched[key]
        if package is None:
            if key in cached:  # an outage with older data at hand: better than nothing
                log.warning("%s package %s: using cached data from %s", key[0], key[1],
                            cached[key].fetched_at)
            return cached.get(key)
        return merge(package, cached.get(key))
