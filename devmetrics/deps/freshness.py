"""Dependency freshness of one repository: manifests -> registries -> Dependency records,
a `dependency_freshness` summary (metrics.md §6), and their place in the store.

The sync layer calls, per repo:

    result = evaluate_repo(connector.list_files(repo), lambda p: connector.read_file(repo, p),
                           registries_for(engine, config.registries))
    save_freshness(engine, repo_id, result)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.clock import now_utc
from devmetrics.deps import manifests, resolve
from devmetrics.deps import versions as v
from devmetrics.deps.cache import FAILURE_TTL, CachedRegistries
from devmetrics.deps.manifests import DeclaredDependency
from devmetrics.deps.registries import Key, PackageReleases, RegistryClient
from devmetrics.deps.report import list_dependencies, render_dependencies
from devmetrics.models import Dependency, DependencySnapshot

log = logging.getLogger("devmetrics.deps")

__all__ = ["RepoFreshness", "evaluate_repo", "latest_snapshot", "list_dependencies", "registries_for",
           "render_dependencies", "save_freshness", "summarise"]

SUMMARY_KEYS = ("dependencies", "outdated", "major_behind", "more_than_one_major_behind",
                "libyears", "libyears_max", "unsupported", "unknown")


class PackageLookup(Protocol):
    def lookup(self, wanted: Mapping[Key, Collection[str]],
               now: datetime | None = None) -> dict[Key, PackageReleases | None]: ...


@dataclass
class RepoFreshness:
    dependencies: list[Dependency]  # repo_id None: the sync layer knows the repo
    summary: dict[str, Any]  # the `dependency_freshness` object, keys SUMMARY_KEYS
    evaluated_at: datetime


def registries_for(engine: Engine | None, base_urls: Mapping[str, str] | None = None,
                   max_workers: int = 8, failure_ttl: timedelta = FAILURE_TTL) -> CachedRegistries:
    """Registry look-ups with the store's cache; `base_urls` is config `registries`,
    `failure_ttl` config `deps.failed_lookup_ttl_hours`."""
    return CachedRegistries(RegistryClient(base_urls, max_workers=max_workers), engine, failure_ttl)


def evaluate_repo(tree: Sequence[str], read: Callable[[str], bytes],
                  registries: PackageLookup, now: datetime | None = None) -> RepoFreshness:
    """Evaluate every direct dependency of every manifest in `tree` (paths on the default
    branch); `read(path)` gives a file's bytes. Registry failures become status unknown."""
    now = now or now_utc()
    declared = [dep for dep in manifests.read_all(tree, read) if dep.direct]
    packages = registries.lookup(wanted_versions(declared), now)
    rows = [to_record(dep, _evaluate(dep, packages.get((dep.ecosystem, dep.name))), now)
            for dep in declared]
    return RepoFreshness(rows, summarise(rows), now)


def _evaluate(dep: DeclaredDependency, package: PackageReleases | None) -> resolve.Freshness:
    try:
        return resolve.evaluate(dep, package)
    except Exception as exc:  # a spec or version no parser foresaw: that one is unknown
        log.warning("%s %s: cannot evaluate %r: %r", dep.ecosystem, dep.name, dep.spec, exc)
        return resolve.Freshness("unknown")


def wanted_versions(declared: Iterable[DeclaredDependency]) -> dict[Key, set[str]]:
    """(ecosystem, name) -> the versions in use that need a release date."""
    wanted: dict[Key, set[str]] = {}
    for dep in declared:
        if dep.source != "registry":
            continue
        versions = wanted.setdefault((dep.ecosystem, dep.name), set())
        in_use = dep.locked or v.exact_pin(dep.ecosystem, dep.spec)
        if in_use:
            versions.add(in_use)
    return wanted


def to_record(dep: DeclaredDependency, found: resolve.Freshness, now: datetime) -> Dependency:
    return Dependency(
        manifest_path=dep.manifest_path, ecosystem=dep.ecosystem, name=dep.name, spec=dep.spec,
        current_version=found.current, current_released_at=found.current_released_at,
        latest_version=found.latest, latest_released_at=found.latest_released_at,
        resolution=found.resolution, direct=dep.direct, majors_behind=found.majors_behind,
        libyears=None if found.libyears is None else round(found.libyears, 4),
        status=found.status, evaluated_at=now)


def summarise(rows: Iterable[Any]) -> dict[str, Any]:
    """The `dependency_freshness` object: counts over dependencies deduplicated by
    (ecosystem, name, version), so one package used by several manifests counts once.
    `rows` are Dependency records, or database rows with the same columns."""
    unique = {(r.ecosystem, r.name, r.current_version or r.spec): r for r in rows}.values()
    ok = [r for r in unique if r.status == "ok"]
    years = [r.libyears for r in ok if r.libyears is not None]
    return {
        "dependencies": len(ok),
        "outdated": sum(1 for r in ok if _outdated(r)),
        "major_behind": sum(1 for r in ok if (r.majors_behind or 0) >= 1),
        "more_than_one_major_behind": sum(1 for r in ok if (r.majors_behind or 0) >= 2),
        "libyears": round(sum(years), 2) if years else None,
        "libyears_max": round(max(years), 2) if years else None,
        "unsupported": sum(1 for r in unique if r.status == "unsupported"),
        "unknown": sum(1 for r in unique if r.status == "unknown"),
    }


def _outdated(row: Dependency) -> bool:
    current, latest = row.current_version, row.latest_version
    if not current or not latest or not v.is_valid(row.ecosystem, current):
        return False
    return v.is_valid(row.ecosystem, latest) and v.is_older(row.ecosystem, current, latest)


def save_freshness(engine: Engine, repo_id: int, result: RepoFreshness) -> DependencySnapshot:
    """Replace the repo's Dependency rows with this evaluation and add a snapshot (history).

    Rows are replaced, not only upserted: a dependency removed from a manifest must leave
    the table, or it would be counted forever.
    """
    snapshot = DependencySnapshot(repo_id=repo_id, taken_at=result.evaluated_at, **result.summary)
    rows = [row.model_copy(update={"repo_id": repo_id}) for row in result.dependencies]
    table = Dependency.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.repo_id == repo_id))
        store.upsert(conn, Dependency, rows)
        store.upsert(conn, DependencySnapshot, [snapshot])
    return snapshot


def latest_snapshot(engine: Engine, repo_id: int) -> dict[str, Any] | None:
    """The newest `dependency_freshness` summary stored for a repo, for the report."""
    table = DependencySnapshot.__table__  # type: ignore[attr-defined]
    query = (sa.select(*[table.c[key] for key in SUMMARY_KEYS])
             .where(table.c.repo_id == repo_id).order_by(table.c.taken_at.desc()).limit(1))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None
