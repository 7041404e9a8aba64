"""Cargo manifests: Cargo.toml (package and workspace tables) and Cargo.lock."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

ECOSYSTEM = "cargo"
TABLES = (("dependencies", "main"), ("dev-dependencies", "dev"), ("build-dependencies", "build"))


def cargo_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    data = tomllib.loads(read(path).decode("utf-8"))
    deps = list(_tables(data))
    for target in data.get("target", {}).values():  # [target.'cfg(...)'.dependencies]
        deps += _tables(target)
    deps += _table(data.get("workspace", {}).get("dependencies", {}), "main")
    return [dep for dep in deps if dep is not None]


def _tables(data: dict[str, Any]) -> Iterator[DeclaredDependency | None]:
    for key, group in TABLES:
        yield from _table(data.get(key, {}), group)


def _table(table: dict[str, Any], group: str) -> Iterator[DeclaredDependency | None]:
    for name, value in table.items():
        yield _declared(name, value, group)


def _declared(name: str, value: Any, group: str) -> DeclaredDependency | None:
    if isinstance(value, str):
        return DeclaredDependency(ECOSYSTEM, name.lower(), value, group=group)
    if value.get("workspace"):
        # `dep.workspace = true` inherits the root's [workspace.dependencies] entry, which
        # the root manifest already counts: counting it here too would count it twice.
        return None
    real = str(value.get("package", name)).lower()  # `package = "..."` renames a dependency
    source = "git" if "git" in value else "path" if "path" in value else "registry"
    return DeclaredDependency(ECOSYSTEM, real, value.get("version"), source=source, group=group)


def cargo_lock(data: bytes) -> LockedVersions:
    locked = LockedVersions(ECOSYSTEM)
    for package in tomllib.loads(data.decode("utf-8")).get("package", []):
        # Workspace members have no `source`; they are not registry packages.
        if str(package.get("source", "")).startswith(("registry+", "sparse+")):
            locked.add(str(package["name"]).lower(), str(package["version"]))
    return locked
