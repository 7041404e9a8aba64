"""npm manifests: package.json, and package-lock.json (v1-v3), yarn.lock (classic and
berry) and pnpm-lock.yaml (v5-v9) for the versions installed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

ECOSYSTEM = "npm"
SECTIONS = (("dependencies", "main"), ("devDependencies", "dev"),
            ("optionalDependencies", "optional"))
GIT_PREFIXES = ("git+", "git://", "git@", "github:", "gitlab:", "bitbucket:", "gist:")
PATH_PREFIXES = ("file:", "link:", "portal:", "./", "../", "/", "~/")
GITHUB_SHORTHAND = re.compile(r"^[\w.-]+/[\w.-]+(#.*)?$")  # "user/repo" means GitHub
# libyaml's loader when PyYAML was built with it: lock files run to megabytes.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def package_json_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    document = json.loads(read(path))
    return [_declared(name, str(spec), group)
            for key, group in SECTIONS
            for name, spec in (document.get(key) or {}).items()]


def _declared(name: str, spec: str, group: str) -> DeclaredDependency:
    spec = spec.strip()
    if spec.startswith("npm:"):  # an alias: "foo": "npm:real-name@^1.2"
        name, spec = split_descriptor(spec[4:])
    return DeclaredDependency(ECOSYSTEM, name, spec or None, source=source_of(spec), group=group)


def source_of(spec: str) -> str:
    if spec.startswith("workspace:"):
        return "workspace"
    if spec.startswith(GIT_PREFIXES) or GITHUB_SHORTHAND.match(spec):
        return "git"
    if spec.startswith(PATH_PREFIXES):
        return "path"
    if spec.startswith(("http://", "https://")):
        return "url"
    return "registry"


# -------------------------------------------------------------------- package-lock.json

def package_lock(data: bytes) -> LockedVersions:
    """v2/v3 list installs under `packages`; v1 only under `dependencies`."""
    document = json.loads(data)
    locked = LockedVersions(ECOSYSTEM)
    for key, entry in (document.get("packages") or {}).items():
        # Only top-level installs: "node_modules/a", not "node_modules/a/node_modules/b".
        name = key.removeprefix("node_modules/")
        if name != key and "node_modules/" not in name and "version" in entry:
            locked.add(entry.get("name", name), entry["version"])  # "name": an alias's target
    if not len(locked):
        for name, entry in (document.get("dependencies") or {}).items():
            if "version" in entry:
                locked.add(name, entry["version"])
    return locked


# ---------------------------------------------------------------------------- yarn.lock

def yarn_lock(data: bytes) -> LockedVersions:
    text = data.decode("utf-8")
    entries = _berry_entries(text) if "__metadata:" in text else _classic_entries(text)
    locked = LockedVersions(ECOSYSTEM)
    for descriptors, version in entries:
        for descriptor in descriptors:
            name, spec = split_descriptor(descriptor)
            locked.add(name, version)
            # Berry writes "name@npm:^1.2"; package.json says "^1.2": key both ways.
            locked.by_key[f"{name}@{spec}"] = version
            locked.by_key[f"{name}@{spec.removeprefix('npm:')}"] = version
    return locked


def split_descriptor(descriptor: str) -> tuple[str, str]:
    """'@babel/core@^7.0.0' -> ('@babel/core', '^7.0.0'): the last @ not at the start."""
    at = descriptor.rfind("@")
    return (descriptor[:at], descriptor[at + 1:]) if at > 0 else (descriptor, "")


def _classic_entries(text: str) -> Iterator[tuple[list[str], str]]:
    """Yarn v1's own format (not YAML): unindented 'a@^1, "b@>= 2 < 3":' headers, then
    indented 'version "1.2.3"' lines. Small enough that a parser library is not needed
    (the one on PyPI, pyarn, is GPL-3: not usable in an MIT tool)."""
    descriptors: list[str] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and line.endswith(":"):
            descriptors = [d.strip().strip('"') for d in line[:-1].split(",")]
        elif descriptors and line.startswith("  ") and line.strip().startswith("version "):
            yield descriptors, line.strip()[len("version "):].strip('"')
            descriptors = []


def _berry_entries(text: str) -> Iterator[tuple[list[str], str]]:
    for key, entry in (yaml.load(text, Loader=YAML_LOADER) or {}).items():
        if key != "__metadata" and isinstance(entry, dict) and "version" in entry:
            yield [d.strip() for d in str(key).split(",")], str(entry["version"])


# ----------------------------------------------------------------------- pnpm-lock.yaml

def pnpm_lock(data: bytes) -> LockedVersions:
    document = yaml.load(data, Loader=YAML_LOADER) or {}
    # v9 nests the root's dependencies under importers["."]; v5/v6 keep them at the top.
    root = (document.get("importers") or {}).get(".", document)
    locked = LockedVersions(ECOSYSTEM)
    for section, _group in SECTIONS:
        for name, value in (root.get(section) or {}).items():
            version = _pnpm_version(value)
            if version:
                locked.add(name, version)
    return locked


def _pnpm_version(value: Any) -> str | None:
    raw = str(value.get("version", "")) if isinstance(value, dict) else str(value)
    # Peer suffixes: "2.1.1(eslint@8.54.0)" (v6+), "2.1.1_eslint@8.54.0" (v5); links skipped.
    found = re.match(r"^v?(\d+\.\d+\.\d+[^(_\s]*)", raw)
    return found.group(1) if found else None
