"""Find manifest + lock file pairs in a repository tree and read their direct dependencies.

Discovery needs only the tree listing (one forge request); then only the files that
matter are read, through a `read(path) -> bytes` callable the connectors provide.
The per-format parsers live in `deps/formats/`, one module per ecosystem family.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from devmetrics.deps import versions as v
from devmetrics.errors import RateLimitExhausted

log = logging.getLogger("devmetrics.deps")

ReadFile = Callable[[str], bytes]

# Folders whose manifests are someone else's (vendored or installed copies).
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", "vendor", "vendors", "node_modules", "bower_components",
    "third_party", "third-party", "thirdparty", "external", "site-packages", ".venv", "venv",
    ".tox", ".nox", "__pycache__", ".yarn", "dist", "build", "target", ".bundle",
})

SOURCES = ("registry", "git", "path", "url", "workspace")


@dataclass(frozen=True)
class DeclaredDependency:
    """One dependency as a manifest declares it, with the lock file's version if paired."""

    ecosystem: str  # pypi | npm | cargo | go | rubygems | packagist
    name: str  # normalised per ecosystem (PEP 503 for PyPI)
    spec: str | None = None  # the constraint as written, in the ecosystem's syntax
    locked: str | None = None
    direct: bool = True
    source: str = "registry"  # registry | git | path | url | workspace
    manifest_path: str = ""
    group: str = "main"  # main | dev | optional | build | a named group


@dataclass(frozen=True)
class ManifestSet:
    """A manifest and the lock file that pins it, if any."""

    kind: str  # a key of formats.FORMATS
    manifest: str
    lock: str | None = None


def is_vendored(path: str) -> bool:
    return any(part in SKIPPED_DIRS for part in path.split("/")[:-1])


def discover(tree: Iterable[str]) -> list[ManifestSet]:
    """Manifest + lock pairs at any depth, outside vendored folders, in path order."""
    from devmetrics.deps.formats import FORMATS  # formats import this module's types

    paths = sorted({p.strip("/") for p in tree if not is_vendored(p.strip("/"))})
    present = set(paths)
    found: list[ManifestSet] = []
    for path in paths:
        for kind, fmt in FORMATS.items():
            if fmt.matches(posixpath.basename(path), path) and not fmt.superseded(path, present):
                found.append(ManifestSet(kind, path, fmt.find_lock(path, present)))
                break
    return found


def read_dependencies(manifest_set: ManifestSet, read: ReadFile) -> list[DeclaredDependency]:
    """The direct dependencies of one manifest set, with locked versions filled in."""
    from devmetrics.deps.formats import FORMATS

    fmt = FORMATS[manifest_set.kind]
    deps = fmt.parse_manifest(manifest_set.manifest, read)
    if manifest_set.lock is not None:
        locked = fmt.parse_lock(manifest_set.lock, read(manifest_set.lock))
        deps = [_with_lock(dep, locked) for dep in deps]
    # One row per (manifest, ecosystem, name): the first declaration (main before dev) wins.
    unique: dict[tuple[str, str], DeclaredDependency] = {}
    for dep in deps:
        unique.setdefault((dep.ecosystem, dep.name), dep)
    return [replace(dep, manifest_path=manifest_set.manifest) for dep in unique.values()]


def read_all(tree: Sequence[str], read: ReadFile) -> list[DeclaredDependency]:
    """Every direct dependency in the tree; a file that cannot be read or parsed is skipped
    with a warning so one broken manifest does not hide the rest of the repo."""
    deps: list[DeclaredDependency] = []
    for manifest_set in discover(tree):
        try:
            deps += read_dependencies(manifest_set, read)
        except RateLimitExhausted:  # the sync stops; its manifests are not broken
            raise
        except Exception as exc:  # any parser or fetch failure: warn and go on
            log.warning("skipping %s: %s", manifest_set.manifest, " ".join(str(exc).split()))
    return deps


def _with_lock(dep: DeclaredDependency, locked: LockedVersions) -> DeclaredDependency:
    version = locked.version_of(dep)
    return replace(dep, locked=version) if version else dep


class LockedVersions:
    """Versions a lock file records, by name; several per name where resolution forked."""

    def __init__(self, ecosystem: str, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.ecosystem = ecosystem
        self.by_name: dict[str, list[str]] = {}
        self.by_key: dict[str, str] = {}  # "name@spec" -> version (yarn, pnpm)
        for name, version in pairs:
            self.add(name, version)

    def add(self, name: str, version: str) -> None:
        versions = self.by_name.setdefault(name, [])
        if version not in versions:
            versions.append(version)

    def version_of(self, dep: DeclaredDependency) -> str | None:
        keyed = self.by_key.get(f"{dep.name}@{dep.spec}")
        if keyed:
            return keyed
        candidates = self.by_name.get(dep.name, [])
        if len(candidates) > 1 and dep.spec:
            # Forked resolution (uv markers, Cargo majors): prefer what the spec allows.
            try:
                allowed = v.allows(dep.ecosystem, dep.spec)
                candidates = [c for c in candidates if allowed(c)] or candidates
            except ValueError:
                pass
        return v.highest(dep.ecosystem, candidates) or (candidates[0] if candidates else None)

    def __len__(self) -> int:
        return len(self.by_name)

