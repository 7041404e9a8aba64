"""metrics.md §6 for one dependency: current, latest, release dates, libyears, majors behind.

Pure functions over a DeclaredDependency and the registry's PackageReleases: no HTTP, no
SQL, so every rule is tested with a package built in the test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from devmetrics.deps import versions as v
from devmetrics.deps.manifests import DeclaredDependency
from devmetrics.deps.registries import PackageReleases

log = logging.getLogger("devmetrics.deps")

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Freshness:
    status: str  # ok | unsupported | unknown
    current: str | None = None
    resolution: str | None = None  # lock | pin | range-max | unconstrained
    latest: str | None = None
    current_released_at: datetime | None = None
    latest_released_at: datetime | None = None
    libyears: float | None = None
    majors_behind: int | None = None
    outdated: bool = False


def latest_version(package: PackageReleases) -> str | None:
    """Highest stable version, neither yanked nor deprecated; npm and Go: the registry's
    own pointer (dist-tags.latest; @latest, which already skips retracted versions)."""
    if package.latest and (package.ecosystem == "npm" or not package.complete):
        return package.latest
    return v.highest(package.ecosystem, stable_versions(package))


def stable_versions(package: PackageReleases) -> list[str]:
    return [version for version, release in package.releases.items()
            if not release.yanked and v.is_stable(package.ecosystem, version)]


def current_version(dep: DeclaredDependency, package: PackageReleases,
                    latest: str | None) -> tuple[str | None, str]:
    """(version in use, how it was found): lock, else pin, else range-max, else latest."""
    if dep.locked:
        return dep.locked, "lock"
    pinned = v.exact_pin(dep.ecosystem, dep.spec)
    if pinned:
        return pinned, "pin"
    if v.is_unconstrained(dep.spec):
        return latest, "unconstrained"
    try:
        return v.max_allowed(dep.ecosystem, dep.spec or "", stable_versions(package)), "range-max"
    except ValueError as exc:
        log.warning("%s %s: cannot read range %r (%s)", dep.ecosystem, dep.name, dep.spec, exc)
        return None, "range-max"


def evaluate(dep: DeclaredDependency, package: PackageReleases | None) -> Freshness:
    if dep.source != "registry":
        return Freshness("unsupported")
    if package is None:
        return Freshness("unknown")
    latest = latest_version(package)
    current, resolution = current_version(dep, package, latest)
    if current is None or latest is None:
        log.warning("%s %s: no published version matches %r", dep.ecosystem, dep.name, dep.spec)
        return Freshness("unknown", current, resolution, latest)
    return _measure(dep, package, package.spelling(current), resolution, package.spelling(latest))


def _measure(dep: DeclaredDependency, package: PackageReleases, current: str,
             resolution: str, latest: str) -> Freshness:
    current_at, latest_at = package.released_at(current), package.released_at(latest)
    if current_at is None or latest_at is None:
        missing = current if current_at is None else latest
        log.warning("%s %s: the registry has no release date for %s", dep.ecosystem, dep.name, missing)
    valid = v.is_valid(dep.ecosystem, current) and v.is_valid(dep.ecosystem, latest)
    return Freshness(
        "ok" if current_at and latest_at else "unknown", current, resolution, latest,
        current_at, latest_at, libyears(current_at, latest_at),
        majors_behind(dep.ecosystem, current, latest) if valid else None,
        valid and v.is_older(dep.ecosystem, current, latest))


def libyears(current_at: datetime | None, latest_at: datetime | None) -> float | None:
    """max(0, released(latest) - released(current)) in years of 365.25 days."""
    if current_at is None or latest_at is None:
        return None
    return max(0.0, (latest_at - current_at).total_seconds() / 86400 / DAYS_PER_YEAR)


def majors_behind(ecosystem: str, current: str, latest: str) -> int | None:
    """major(latest) - major(current); None for calendar versions or no major. Never below
    0: a pre-release or fork ahead of latest is not "behind" by a negative amount."""
    current_major, latest_major = v.major(ecosystem, current), v.major(ecosystem, latest)
    if current_major is None or latest_major is None:
        return None
    return max(0, latest_major - current_major)
