"""Packagist manifests: composer.json and composer.lock."""

from __future__ import annotations

import json
import re

from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

ECOSYSTEM = "packagist"
# Platform requirements name the PHP runtime and its extensions, not packages.
PLATFORM = re.compile(r"^(php(-64bit|-ipv6|-zts|-debug)?|hhvm|ext-.+|lib-.+"
                      r"|composer(-plugin-api|-runtime-api)?)$")


def composer_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    document = json.loads(read(path))
    return [_declared(name.lower(), str(spec), group)
            for key, group in (("require", "main"), ("require-dev", "dev"))
            for name, spec in (document.get(key) or {}).items()
            if "/" in name and not PLATFORM.match(name.lower())]


def _declared(name: str, spec: str, group: str) -> DeclaredDependency:
    # "dev-main" and "1.x-dev" follow a branch: a VCS source, no registry release to compare.
    source = "git" if spec.startswith("dev-") or spec.endswith("-dev") else "registry"
    return DeclaredDependency(ECOSYSTEM, name, spec, source=source, group=group)


def composer_lock(data: bytes) -> LockedVersions:
    document = json.loads(data)
    locked = LockedVersions(ECOSYSTEM)
    for key in ("packages", "packages-dev"):
        for package in document.get(key) or []:
            locked.add(str(package["name"]).lower(), str(package["version"]))
    return locked
